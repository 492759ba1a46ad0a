"""Figures for /stats, exports and the dashboard, computed in SQL."""

"""Schedules as data: ``[[schedules]]`` specs (``spec``), their default calendar, and the pure planner
(``plan``) that turns a spec plus the workday calendar into dated occurrences and messages."""

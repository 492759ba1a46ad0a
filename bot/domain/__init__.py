"""Pure domain rules (no I/O): numerals and money, the Party dues standard, calendars."""

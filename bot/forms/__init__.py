"""Forms as data: specs, built-in forms, and pure parsing of what members reply (no I/O)."""

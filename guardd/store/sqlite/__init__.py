"""The embedded SQLite backend: one file in ``state_dir``."""

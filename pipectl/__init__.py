"""pipectl: operate a file-driven data pipeline on AWS or on an embedded emulator."""

__version__ = "0.1.0"

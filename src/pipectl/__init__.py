"""pipectl: a local-first sales-pipeline tracker for the terminal."""

__version__ = "0.1.0"

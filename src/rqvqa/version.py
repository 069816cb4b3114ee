"""The package version (its own module so that any part of rqvqa can name it without importing the API)."""

__version__ = "0.1.0"

"""mer-tag: listen to a music library and say what each song feels like."""

__version__ = "0.4.0"

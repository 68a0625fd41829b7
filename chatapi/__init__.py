"""The chat API project: settings, URLs, middleware and the API exception handler."""

__version__ = "1.0.0"

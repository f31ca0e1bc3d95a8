"""Signed image URL verification for nginx ``auth_request``."""

__version__ = "0.1.0"

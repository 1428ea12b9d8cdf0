"""Keyset-paginated, resumable NDJSON stream service for manufacturing trace data."""

__version__ = "0.1.0"

"""Keyset-paginated, resumable NDJSON stream service for manufacturing trace data."""

from pathlib import Path

__version__ = "0.1.0"


def resource_dir(name: str) -> Path:
    """`migrations` or `frontend`: inside the installed package (a wheel copies them into
    `svc/_data`, see setup.py), else the repository's top-level folder (a checkout or an
    editable install)."""
    from importlib import resources

    packaged = resources.files("svc") / "_data" / name
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / name

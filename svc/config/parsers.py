"""Parsers of settings' text (an environment variable or a flag) into their values.

Each raises ValueError with a message that completes "TRACE_X: " or "--x: ".
"""

from __future__ import annotations


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise ValueError("must be a positive integer")
    return n


def non_negative(value: str) -> int:
    n = int(value)
    if n < 0:
        raise ValueError("must be 0 or a positive integer")
    return n


def seconds(value: str) -> float:
    n = float(value)
    if not n >= 0:  # also refuses nan
        raise ValueError("must be a number of seconds, 0 or more")
    return n


def boolean(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def snapshot_mode(value: str) -> str | None:
    if value.lower() == "scn":
        return "scn"
    if value.lower() in {"off", "none", ""}:
        return None
    raise ValueError("must be scn or off")


def gzip_level(value: str) -> int:
    if value.lower() in {"off", "0", "false", "no"}:
        return 0
    if value in {"1", "2", "3", "4", "5", "6", "7", "8", "9"}:
        return int(value)
    raise ValueError("must be off or a level from 1 to 9")


def export_storage(value: str) -> str:
    if value == "local" or (value.startswith("s3://") and len(value.split("/")[2]) > 0):
        return value.rstrip("/") if value != "local" else value
    raise ValueError("must be local or s3://bucket[/prefix]")


def log_format(value: str) -> str:
    if value.lower() in {"json", "text"}:
        return value.lower()
    raise ValueError("must be json or text")

"""The domain registry: which table, key, tie-break and columns each domain reads.

Loaded from a TOML file (``TRACE_DOMAINS``; `default_domains.toml` ships for the demo
schema). Every identifier is validated here, once, so SQL built from a `Domain` is built
from configuration only, never from a request.

    [domains.history]
    table = "MES_CONTAINER_HISTORY"   # may be schema-qualified: OWNER.TABLE
    key = "CONTAINERID"
    tiebreak = "rowid"                # the engine's row id (SQLite rowid, Oracle ROWID),
                                      # or the name of a unique column
    columns = ["CONTAINERID", "TXNDATE", ...]
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ROWID = "rowid"
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_$#]{0,127}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class DomainConfigError(ValueError):
    """The domain file is malformed; raised at start-up, never during a request."""


@dataclass(frozen=True)
class Domain:
    name: str
    table: str
    key: str
    tiebreak: str  # ROWID, or a unique column
    columns: tuple[str, ...]  # the key column is always among them

    @property
    def key_index(self) -> int:
        return self.columns.index(self.key)


def _ident(value: object, what: str, qualified: bool = False) -> str:
    if not isinstance(value, str):
        raise DomainConfigError(f"{what} must be a string")
    parts = value.split(".") if qualified else [value]
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise DomainConfigError(f"{what} {value!r} is not a plain SQL identifier")
    return value


def parse_domains(text: str) -> dict[str, Domain]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DomainConfigError(f"domain file is not valid TOML: {exc}") from exc
    table = data.get("domains")
    if not isinstance(table, dict) or not table:
        raise DomainConfigError("domain file needs at least one [domains.NAME] table")
    domains: dict[str, Domain] = {}
    for name, spec in table.items():
        if not _NAME.match(name):
            raise DomainConfigError(f"domain name {name!r}: use lowercase letters, digits, _")
        if not isinstance(spec, dict):
            raise DomainConfigError(f"[domains.{name}] must be a table")
        unknown = set(spec) - {"table", "key", "tiebreak", "columns"}
        if unknown:
            raise DomainConfigError(f"[domains.{name}] has unknown keys {sorted(unknown)}")
        key = _ident(spec.get("key", "CONTAINERID"), f"{name}.key")
        tiebreak = spec.get("tiebreak", ROWID)
        if not (isinstance(tiebreak, str) and tiebreak.lower() == ROWID):
            tiebreak = _ident(tiebreak, f"{name}.tiebreak")
        else:
            tiebreak = ROWID
        columns = spec.get("columns")
        if not isinstance(columns, list) or not columns:
            raise DomainConfigError(f"{name}.columns must be a non-empty list")
        cols = [_ident(c, f"{name}.columns[]") for c in columns]
        if len({c.upper() for c in cols}) != len(cols):
            raise DomainConfigError(f"{name}.columns has duplicates")
        if key.upper() not in {c.upper() for c in cols}:
            cols.insert(0, key)
        domains[name] = Domain(
            name=name,
            table=_ident(spec.get("table"), f"{name}.table", qualified=True),
            key=next(c for c in cols if c.upper() == key.upper()),
            tiebreak=tiebreak,
            columns=tuple(cols),
        )
    return domains


def load_domains(path: str | Path | None = None) -> dict[str, Domain]:
    """Load the registry from `path`, or the packaged demo registry."""
    if path is None:
        text = resources.files("svc").joinpath("default_domains.toml").read_text("utf-8")
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise DomainConfigError(f"cannot read domain file {path}: {exc}") from exc
    return parse_domains(text)

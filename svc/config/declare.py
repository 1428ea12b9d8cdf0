"""How a setting is declared: once, as a field of `Settings` that carries its environment
variable, flag, parser and help next to its name, type and default.

`SETTINGS`, the `serve` flags and docs/configuration.md's table are read from those
fields, so a setting cannot be documented in one place and missing in another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

_KEY = "setting"  # the key of a declaration in a field's metadata


@dataclass(frozen=True)
class _Declared:
    env: str
    parse: Callable[[str], Any]
    help: str
    flag: str | None


def setting(
    env: str, parse: Callable[[str], Any], default: Any, help: str, *, flag: str | None = None
) -> Any:
    """A field of `Settings` read from `env` or from its `serve` flag (`--` and the field's
    name with dashes, unless `flag` names it), parsed by `parse`; a list default is copied
    for each instance."""
    meta = {_KEY: _Declared(env, parse, help, flag)}
    if isinstance(default, list):
        return field(default_factory=default.copy, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Setting:
    """One declared setting, as the environment, the CLI and the docs see it."""

    attr: str
    env: str
    parse: Callable[[str], Any]
    help: str
    default: Any
    flag: str

    @property
    def doc(self) -> str:
        """The help text with its default, as the CLI and docs/configuration.md show it."""
        default = self.default
        if default is None or default == []:
            return self.help
        if isinstance(default, bool):
            default = str(default).lower()
        return f"{self.help} (default {default})"

    def read(self, raw: str, source: str) -> Any:
        """`raw` parsed; a ValueError names `source` (the variable or the flag it came from)."""
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc


def declared(settings_class: Any) -> tuple[Setting, ...]:
    """The settings declared on a dataclass with `setting()`, in declaration order; every
    field must be one."""
    found = []
    for f in fields(settings_class):
        d = f.metadata.get(_KEY)
        if d is None:  # a setting nobody could set, and the docs would not show
            raise TypeError(f"{f.name}: declare it with setting(env, parse, default, help)")
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        flag = "--" + (d.flag or f.name.replace("_", "-"))
        found.append(Setting(f.name, d.env, d.parse, d.help, default, flag))
    return tuple(found)


def reference_table(settings: Iterable[Setting]) -> str:
    """docs/configuration.md's table (Markdown): a row a setting, worded as `--help`."""
    rows = ["| variable | flag | meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | `{s.flag}` | {s.doc} |" for s in settings]
    return "\n".join(rows) + "\n"

"""An operation of the OpenAPI document, as the operations table writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from svc.errors import TraceError
from svc.http.paths import Endpoint


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path, query
    description: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Operation:
    endpoint: Endpoint
    summary: str
    description: str
    ok: tuple[int, str, str, Any]  # status, description, media type, struct type or schema
    params: tuple[Param, ...] = ()
    body: type[msgspec.Struct] | None = None
    errors: tuple[type[TraceError], ...] = ()
    api: bool = True  # under /api: API keys apply
    headers: dict[str, str] = field(default_factory=dict)  # response headers of `ok`
    also: tuple[tuple[str, Any], ...] = ()  # other media types of `ok`, and their schemas
    conditional: bool = False  # `If-None-Match` with the ETag of `ok` answers 304

    @property
    def method(self) -> str:
        return self.endpoint.method.lower()

    @property
    def path(self) -> str:
        return self.endpoint.path

"""The HTTP protocol: limits and problem+json for protocol errors.

uvicorn's h11 protocol (chosen by measurement over httptools, see docs/limits.md: pipelined
requests never read by the client do not grow its memory), with what it lacks:

- a header timeout: a connection must deliver a complete request head within
  `header_timeout` seconds of connecting or of its previous response ending, else it gets
  a 408 (when part of a head arrived) and is closed. This also closes slowloris
  connections, idle fresh connections and bodies still trickling in after their response;
- a connection limit: a request on a connection opened beyond `max_connections` gets a
  503 `overloaded` and the connection is closed;
- its own protocol errors (a malformed request, a head over `max_header_bytes`) as
  `application/problem+json` with `Connection: close` instead of text/plain, built (and
  counted in `trace_problem_responses`) by `svc.http.problems` like the app's;
- `Connection: close` on the app's 408 (a body that did not arrive, see `svc.http.params`).

The body timeout is enforced where the app reads the body; the header size limit and the
keep-alive timeout are uvicorn's own (`h11_max_incomplete_event_size`, `timeout_keep_alive`).
"""

from __future__ import annotations

import asyncio
import http
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from svc.config import Settings
from svc.errors import BadRequest, HeadersTooLarge, Overloaded, RequestTimeout, TraceError
from svc.http.problems import closing_problem

_CLOSE = (b"connection", b"close")


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10
    max_connections: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.header_timeout, settings.max_connections)


async def _overloaded(scope: Scope, receive: Receive, send: Send) -> None:
    """The app of a connection beyond the limit: 503 and close."""
    headers, body = closing_problem(Overloaded())
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _close_on_408(app: ASGIApp) -> ASGIApp:
    """The app, closing the connection after its 408s: the rest of that body is not wanted."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 408:
                message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped


class TraceH11Protocol(H11Protocol):
    """uvicorn's H11Protocol with a header timeout, a connection limit and problem+json."""

    limits: ClassVar[Limits] = Limits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.app = _close_on_408(self.app)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.app = _overloaded
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head arrived in time
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        # Armed before uvicorn parses a pipelined request, which disarms it.
        if not self.transport.is_closing():
            self._arm_head_timer()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this while handling h11's RemoteProtocolError, which says 431 when
        the head outgrew `h11_max_incomplete_event_size`."""
        exc = sys.exc_info()[1]
        if getattr(exc, "error_status_hint", 400) == 431:
            self._send_problem(HeadersTooLarge())
        else:
            self._send_problem(BadRequest("The HTTP request is malformed"))

    def _send_problem(self, error: TraceError) -> None:
        """Answer with `error` where h11 still allows a response, then close."""
        headers, body = closing_problem(error)
        try:
            response = h11.Response(
                status_code=error.status,
                headers=headers,
                reason=http.HTTPStatus(error.status).phrase.encode(),
            )
            self.transport.write(self.conn.send(response) or b"")
            self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            pass  # a response is already under way: closing is all that is left
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        started = self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]
        if started and self.conn.our_state is h11.IDLE:
            self.logger.info("%s: request head not complete in time", self.client)
            self._send_problem(RequestTimeout("The request head did not arrive in time"))
        else:  # idle, or a body still arriving after its response
            self.transport.close()


def protocol_class(settings: Settings) -> type[TraceH11Protocol]:
    """TraceH11Protocol bound to the limits of `settings`, for uvicorn.Config(http=...)."""
    return type("TraceH11Protocol", (TraceH11Protocol,), {"limits": Limits.of(settings)})

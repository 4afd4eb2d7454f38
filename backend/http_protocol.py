"""uvicorn's h11 protocol with read deadlines (`--http backend.http_protocol:TimedH11Protocol`).

uvicorn times out idle keep-alive connections but not a request in progress: a client that
opens a connection and sends its headers a byte at a time (or nothing at all), or stops in the
middle of a body, holds a socket and a slot of `--limit-concurrency` for as long as it likes
(slowloris). Here every request's headers must be complete within a deadline counted from the
connection (or from the first byte of a later keep-alive request), and a body may pause for
at most a given time between reads; otherwise the connection is closed.
"""

import asyncio
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise SystemExit(f"{name} must be a number of seconds between 0 and 3600, not {raw!r}")
    return value


# Read once at start: `make run` and a process manager set them in the environment.
HEADER_TIMEOUT_SECONDS = _seconds("HTTP_HEADER_TIMEOUT_SECONDS", 10.0)
BODY_TIMEOUT_SECONDS = _seconds("HTTP_BODY_TIMEOUT_SECONDS", 30.0)


class TimedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = HEADER_TIMEOUT_SECONDS
        self.body_timeout = BODY_TIMEOUT_SECONDS
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_idle: asyncio.TimerHandle | None = None

    # asyncio's Protocol takes any BaseTransport; uvicorn always hands this one a Transport.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:
            # Part of a request line or header block: its deadline runs from the first byte.
            self._arm_header_deadline()
        elif state is h11.SEND_BODY:
            self._cancel_header_deadline()
            self._rearm_body_idle()
        else:
            self._cancel_timers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._read_expired)

    def _rearm_body_idle(self) -> None:
        if self._body_idle is not None:
            self._body_idle.cancel()
        self._body_idle = self.loop.call_later(self.body_timeout, self._read_expired)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _cancel_timers(self) -> None:
        self._cancel_header_deadline()
        if self._body_idle is not None:
            self._body_idle.cancel()
            self._body_idle = None

    def _read_expired(self) -> None:
        self._header_deadline = self._body_idle = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # The application has not read what came; the client is not the one waiting.
            self._rearm_body_idle()
            return
        self.logger.info("Closing a connection whose request did not arrive in time.")
        self.transport.close()

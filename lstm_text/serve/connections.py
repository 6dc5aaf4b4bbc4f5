"""Guards on connections, below the app: a cap on open connections and a deadline for each request to arrive
whole. uvicorn's keep-alive timeout only starts after a first answer, and its --limit-concurrency answers only
once a request's head has come: a client that connects and sends nothing, or trickles a header, would hold a
file descriptor for ever (21,000 of them left the server without descriptors).
"""

from __future__ import annotations

import json
import logging
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .limits import Limits

log = logging.getLogger("uvicorn.error")


def _answer(status: int, reason: str, message: str, code: str, retry: bool) -> bytes:
    """A whole HTTP/1.1 error answer with the API's JSON error body, written straight to the socket."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}"]
    head += ["connection: close"] + (["retry-after: 1"] if retry else [])
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Once:
    """A warning logged at most once a second, with how many were held back (not one line per connection)."""

    def __init__(self):
        self.last, self.held = 0.0, 0

    def warn(self, msg: str) -> None:
        now = time.monotonic()
        if now - self.last < 1.0:
            self.held += 1
            return
        more = f" (and {self.held} more in the last second)" if self.held else ""
        log.warning("%s%s", msg, more)
        self.last, self.held = now, 0


def guarded_protocol(limits: Limits) -> type:
    """uvicorn's h11 protocol with ``limits.limit_concurrency`` and ``limits.request_timeout`` (a class: uvicorn's
    ``http`` setting takes one)."""
    refused, late = _Once(), _Once()

    class Guarded(H11Protocol):
        deadline = None  # the timer of the request being received

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > limits.limit_concurrency:
                msg = (
                    f"the server has {limits.limit_concurrency:,} open connections, its limit "
                    "(lstm-text serve --limit-concurrency); retry later"
                )
                refused.warn(f"connection refused: {msg}")
                transport.write(_answer(503, "Service Unavailable", msg, "too_many_connections", retry=True))
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            """A timer while a request is being received (from the connection or the previous answer); none
            while the app answers (a long stream is not a slow client)."""
            receiving = self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing()
            if receiving and self.deadline is None:
                self.deadline = self.loop.call_later(limits.request_timeout, self._expired)
            elif not receiving:
                self._disarm()

        def _disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def _expired(self) -> None:
            self.deadline = None
            if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                return
            started = self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete
            msg = (
                f"the request did not arrive whole within {limits.request_timeout:g} s "
                "(lstm-text serve --request-timeout)"
            )
            late.warn(f"connection closed: {msg}")
            if not started:
                self.transport.write(_answer(408, "Request Timeout", msg, "request_timeout", retry=False))
            if self.cycle is not None:
                self.cycle.disconnected = True  # the app's receive() answers http.disconnect
                self.cycle.message_event.set()
            self.transport.close()

    return Guarded

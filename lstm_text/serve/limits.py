"""The bounds a server enforces on requests and work, and the errors a request gets when it passes one (stdlib
only: the CLI reads the defaults for its --help)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LstmTextError


@dataclass(frozen=True)
class Limits:
    max_body: int = 1_048_576  # bytes per request body: answered 413 above it, before it is read whole
    max_texts: int = 256  # texts per /v1/classify request
    max_chars: int = 20_000  # characters per text or prompt (classify reads at most ~16k of a text anyway)
    max_label: int = 100  # characters of abstain_label: every result repeats it (256 x 1 MB would be 256 MB)
    max_tokens: int = 1024  # new tokens per sample
    max_n: int = 8  # samples per /v1/completions request: prompts x n
    max_stop_chars: int = 1_000  # characters of a request's stop strings, all together
    workers: int = 64  # generations stepped at once (one batch per model); more wait in the queue
    max_queue: int = 256  # requests waiting per kind (classify, generate); one more is answered 503
    batch_wait_ms: float = 2.0  # how long a classify batch waits for more requests after its first one
    max_batch: int = 2048  # texts per classify batch (the classifier splits it into threads of 512)
    drain_timeout: float = 30.0  # seconds SIGTERM waits for in-flight requests before cancelling them
    limit_concurrency: int = 512  # open connections; one more is answered 503 and closed at once (file descriptors)
    request_timeout: float = 30.0  # seconds a request has to arrive whole, head and body (408 after): slow clients

    def __post_init__(self) -> None:
        names = ("max_body", "max_texts", "max_chars", "max_label", "max_tokens", "max_n", "max_stop_chars", "workers")
        for name in (*names, "max_batch", "limit_concurrency"):
            if getattr(self, name) < 1:
                raise LstmTextError(f"{{{name}}} must be at least 1", name)
        if self.max_queue < 0:
            raise LstmTextError("{max_queue} must be >= 0", "max_queue")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise LstmTextError("{batch_wait_ms} must be in [0, 1000]", "batch_wait_ms")
        for name in ("drain_timeout", "request_timeout"):
            if not 0 < getattr(self, name) < float("inf"):
                raise LstmTextError(f"{{{name}}} must be a positive number of seconds", name)


class Busy(Exception):
    """The queue of one kind of work is full: answered 503 with Retry-After."""


class ApiError(Exception):
    """A request the server refuses: an HTTP status and a one-line message, answered as an OpenAI-style error."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

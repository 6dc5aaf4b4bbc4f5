"""The bounds a server enforces on requests and work, and the errors a request gets when it passes one (stdlib
only: the CLI's serve options derive from its fields, their defaults and help)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option_field
from ..errors import LstmTextError


@dataclass(frozen=True)
class Limits:
    # each option's --help text (the CLI's serve options derive from these fields); comments say why
    max_body: int = option_field(1_048_576, "Bytes per request body (413 above).")  # refused before it is read whole
    max_texts: int = option_field(256, "Texts per classify request (422 above).")
    max_chars: int = option_field(20_000, "Characters per text or prompt (422 above).")  # classify reads ~16k of a text
    max_label: int = option_field(
        100, "Characters of abstain_label, which every result repeats (422 above)."
    )  # 256 x 1 MB
    max_tokens: int = option_field(1024, "max_tokens a request may ask for (422 above).")  # new tokens per sample
    max_n: int = option_field(8, "Samples per completions request, prompts x n.")
    max_stop_chars: int = option_field(1_000, "Characters of a request's stop strings, all together (422 above).")
    workers: int = option_field(64, "Generations stepped at once, as one batch per model; more wait in the queue.")
    max_queue: int = option_field(256, "Requests waiting per kind (classify, generate); more: 503 with Retry-After.")
    batch_wait_ms: float = option_field(2.0, "How long a classify batch waits for more requests after its first.")
    max_batch: int = 2048  # texts per classify batch (the classifier splits it into threads of 512); not an option
    drain_timeout: float = option_field(30.0, "Seconds SIGTERM waits for requests in flight before cancelling them.")
    limit_concurrency: int = option_field(512, "Open connections; one more is answered 503 and closed at once.")  # fds
    request_timeout: float = option_field(
        30.0, "Seconds a request has to arrive whole, head and body; then 408 and closed."
    )  # slow clients

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

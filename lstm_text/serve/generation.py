"""Generation jobs for /v1/generate and /v1/completions: each runs on a worker thread, hands its text pieces
to the event loop as they are produced, and stops at the next token once its client has gone away.

A job samples ``n`` continuations of each of its prompts as one batch (``infer.generate.sample_tokens``), so
``n`` samples cost little more than one; prompts of one request run one after another.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..config import GenerateConfig
from ..infer.generate import StopText, prompt_ids, sample_tokens
from .limits import Busy, Limits
from .metrics import Metrics

END = object()  # the last item a job puts on its queue


@dataclass
class Outcome:
    """What a finished job reports: per choice (prompt-major, ``n`` per prompt) why it ended and its tokens."""

    finish: list[str] = field(default_factory=list)  # "stop" (a stop string) or "length" (max_tokens)
    tokens: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    cancelled: bool = False
    error: BaseException | None = None


def pieces(model, prompt: str, cfg: GenerateConfig, n: int, cancel: threading.Event, out: Outcome, first: int = 0):
    """Yield (choice index, text piece) for ``n`` samples of ``prompt`` drawn as one batch; fills ``out``.

    Checked once per token: ``cancel`` ends it there (``out.cancelled``)."""
    texts = [StopText(model.tokenizer, cfg.stop) for _ in range(n)]
    tokens = [0] * n
    out.prompt_tokens += len(prompt_ids(model.tokenizer, prompt))
    for toks in sample_tokens(model.net, model.tokenizer, prompt, cfg, n, model.quantize):
        if cancel.is_set():
            out.cancelled = True
            break
        for i, t in enumerate(toks.tolist()):
            if not texts[i].done:
                tokens[i] += 1
                piece = texts[i].push(t)
                if piece:
                    yield first + i, piece
        if all(t.done for t in texts):
            break
    for i, t in enumerate(texts):
        tail = t.finish()
        if tail and not out.cancelled:
            yield first + i, tail
        out.finish.append("stop" if t.done else "length")
    out.tokens += tokens


class Job:
    """One request's generation. The worker ``put``s (choice, piece) items, then END; the event loop reads them
    in ``batches``: everything that arrived since its last read, so a busy server sends fewer, larger events, and
    the worker wakes the loop once per read instead of once per token."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.cancel = threading.Event()
        self.outcome = Outcome()
        self._items: deque = deque()
        self._lock = threading.Lock()
        self._ready = asyncio.Event()  # set in the loop's thread by ``_wake``
        self._wake_pending = False

    def put(self, item) -> None:
        """Called by the worker thread."""
        with self._lock:
            self._items.append(item)
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the event loop is gone (the server stopped): nobody is listening
            self.cancel.set()

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._ready.set()

    async def batches(self) -> AsyncIterator[list[tuple[int, str]]]:
        """Lists of (choice, piece) in the order produced, until the job ends (``outcome`` is then complete)."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            with self._lock:
                items = list(self._items)
                self._items.clear()
            done = bool(items) and items[-1] is END
            if done:
                items.pop()
            if items:
                yield items
            if done:
                return


class GenerationPool:
    """``limits.workers`` generation threads behind a bounded queue of ``limits.max_queue`` waiting jobs."""

    def __init__(self, limits: Limits, metrics: Metrics):
        self.limits, self.metrics = limits, metrics
        self._executor = ThreadPoolExecutor(limits.workers, thread_name_prefix="generate")
        self._lock = threading.Lock()
        self.admitted = self.running = 0
        self._closed = False
        metrics.gauge("lstm_text_queue_depth", lambda: self.admitted - self.running, kind="generate")
        metrics.gauge("lstm_text_active_generations", lambda: self.running)

    def submit(self, name: str, model, prompts: list[str], cfg: GenerateConfig, n: int) -> Job:
        """Start a job (``n`` samples of each prompt); raises ``Busy`` when the queue is full."""
        with self._lock:
            if self._closed:
                raise Busy("the server is shutting down")
            workers, queue = self.limits.workers, self.limits.max_queue
            if self.admitted >= workers + queue:
                raise Busy(
                    f"{workers} generations are running and {self.admitted - workers} waiting "
                    f"(--workers {workers}, --max-queue {queue})"
                )
            self.admitted += 1
        job = Job(asyncio.get_running_loop())
        self._executor.submit(self._run, job, name, model, prompts, cfg, n)
        return job

    def _run(self, job: Job, name: str, model, prompts: list[str], cfg: GenerateConfig, n: int) -> None:
        with self._lock:
            self.running += 1
        out = job.outcome
        try:
            for k, prompt in enumerate(prompts):
                if job.cancel.is_set():
                    out.cancelled = True
                    break
                for item in pieces(model, prompt, cfg, n, job.cancel, out, first=k * n):
                    job.put(item)
        except Exception as e:  # a bug: the request is answered 500
            out.error = e
        finally:
            with self._lock:
                self.running -= 1
                self.admitted -= 1
            self.metrics.inc("lstm_text_generated_tokens_total", sum(out.tokens), model=name)
            self.metrics.inc("lstm_text_prompt_tokens_total", out.prompt_tokens, model=name)
            if out.cancelled:
                self.metrics.inc("lstm_text_generations_cancelled_total", model=name)
            job.put(END)

    def close(self) -> None:
        """Refuse new jobs and wait for the running and queued ones (SIGTERM drains them)."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)

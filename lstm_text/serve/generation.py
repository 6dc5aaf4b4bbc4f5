"""Generation jobs for /v1/generate, /v1/completions and /v1/chat/completions, continuously batched: one thread
per language model steps every live job's samples as one batch (``infer.batch.BatchGenerator``); a job joins
between two steps and leaves at the next step once it is done or its client has gone away. The pieces of text go
to the event loop through one ``Outbox`` per loop, a few steps' worth at a time when many jobs stream.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..config import GenerateConfig
from ..infer.batch import BatchGenerator, Sink
from .limits import Busy, Limits
from .metrics import BATCH_BUCKETS, Metrics

END = object()  # the last item a job puts on its queue
# Hand-overs to the event loop: each streamed event costs the loop ~45 us of Python (Starlette, h11, a socket
# write), which it spends holding the GIL that the engine needs between its torch calls. So the engine hands its
# output over at most once per EVENT_SECONDS x the jobs streaming (64 streams: every 19 ms, each event then
# carries ~5 tokens; one stream: every token), the loop sends for ~15% of the time, and a job's first text goes
# at once. 64 streams on a 2-core x86_64: 9.8-11.1x one stream's tokens/s (4.5-6.0x with one wake-up per job and
# step), events of ~5 tokens every 20 ms.
EVENT_SECONDS = 300e-6
MAX_HOLD = 0.025  # seconds text may wait in the engine, whatever the number of streams (--workers)
log = logging.getLogger("uvicorn.error")


@dataclass
class Outcome:
    """What a finished job reports: per choice (prompt-major, ``n`` per prompt) why it ended and its tokens."""

    finish: list[str] = field(default_factory=list)  # "stop" (a stop string), "length" (max_tokens), "cancelled"
    tokens: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    cancelled: bool = False
    error: BaseException | None = None


class Outbox:
    """The engine's output on its way to one event loop: the (job, item) pairs of the steps since the last
    hand-over go at once, with one wake-up of the loop (none while the last one has not run yet: a busy loop then
    takes them all in one go), and the loop hands each job its items. One ``call_soon_threadsafe`` per job and
    step instead costs a write to the loop's wake-up pipe and a GIL hand-over per stream and step."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.pending: list[tuple[Job, object]] = []  # items not handed over yet (the engine's thread only)
        self._ready: list[tuple[Job, object]] = []  # handed over, not delivered yet
        self._lock = threading.Lock()
        self._scheduled = False  # a delivery waits to run in the loop
        self.urgent = False  # a job's first text is pending: hand over after this step (time to first token)

    def flush(self) -> None:
        """Hand the pending items over (the engine's thread, between steps)."""
        if not self.pending:
            return
        items, self.pending, self.urgent = self.pending, [], False
        with self._lock:
            self._ready += items
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the event loop is gone (the server stopped): nobody is listening
            for job, _ in items:
                job.cancel.set()

    def _deliver(self) -> None:
        with self._lock:
            items, self._ready, self._scheduled = self._ready, [], False
        for job, item in items:
            job._receive(item)


class Job(Sink):
    """One request's generation. The engine ``put``s (choice, piece) items, then END, through its ``Outbox``; the
    event loop reads them in ``batches``: everything that arrived since its last read, so a busy server sends
    fewer, larger events."""

    def __init__(
        self,
        outbox: Outbox,
        name: str,
        model,
        prompts: list[str],
        cfg: GenerateConfig,
        n: int,
        stream: bool = True,
    ):
        """``stream``: the client reads the pieces as they come; otherwise they are held by the engine and handed
        over with END (one wake-up per answer instead of one per step: the engine's thread and the loop's share
        the GIL)."""
        self.outbox, self.name, self.model, self.prompts, self.cfg, self.n = outbox, name, model, prompts, cfg, n
        self.stream = stream
        self.cancel = threading.Event()
        self.outcome = Outcome(finish=["cancelled"] * (len(prompts) * n), tokens=[0] * (len(prompts) * n))
        self.left = len(prompts) * n  # choices not done yet
        self._held: list = []  # a non-streamed job's items until END (the engine's thread)
        self._started = False  # its first item is on its way
        self._items: deque = deque()  # delivered, not read yet (the loop's thread)
        self._ready = asyncio.Event()

    def put(self, item) -> None:
        """Called by the engine's thread; the item reaches the loop when the engine flushes the outbox."""
        if not self.stream:
            self._held.append(item)
            if item is not END:
                return
            items, self._held = self._held, []
            self.outbox.pending += [(self, it) for it in items]
        else:
            self.outbox.pending.append((self, item))
            if not self._started:
                self._started = self.outbox.urgent = True

    # the engine's calls (``infer.batch.Sink``), on its thread
    def piece(self, choice: int, text: str) -> None:
        self.put((choice, text))

    def done(self, choice: int, finish: str, tokens: int) -> None:
        self.outcome.finish[choice], self.outcome.tokens[choice] = finish, tokens
        self.outcome.cancelled |= finish == "cancelled"
        self.left -= 1

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def _receive(self, item) -> None:
        """An item delivered by the outbox (the loop's thread)."""
        self._items.append(item)
        self._ready.set()

    async def batches(self) -> AsyncIterator[list[tuple[int, str]]]:
        """Lists of (choice, piece) in the order produced, until the job ends (``outcome`` is then complete)."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            items = list(self._items)
            self._items.clear()
            done = bool(items) and items[-1] is END
            if done:
                items.pop()
            if items:
                yield items
            if done:
                return

    async def texts(self) -> AsyncIterator[dict[int, str]]:
        """``batches`` with each choice's pieces joined: {choice: text}, in the order the choices first appear."""
        async for items in self.batches():
            texts: dict[int, str] = {}
            for i, piece in items:
                texts[i] = texts.get(i, "") + piece
            yield texts


class Engine:
    """The stepping thread of one language model: takes the jobs it is given, steps them all as one batch."""

    def __init__(self, pool: GenerationPool, name: str, model):
        self.pool, self.name = pool, name
        self.batch = BatchGenerator(model.net, model.tokenizer, model.quantize, on_tokens=self._hand_over)
        self.jobs: list[Job] = []  # jobs being stepped
        self._next_flush = 0.0  # perf_counter time of the next hand-over to the event loop
        self._boxes: dict[int, Outbox] = {}  # the outboxes of the jobs stepped since the last hand-over
        # event loop -> the outbox its jobs share (kept while a job holds it)
        self.outboxes: weakref.WeakValueDictionary[asyncio.AbstractEventLoop, Outbox] = weakref.WeakValueDictionary()
        self.thread = threading.Thread(target=self._run, name=f"generate-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (new := self.pool._take(self, bool(self.batch))) is not None:
            for job in new:
                self.jobs.append(job)
                self._boxes[id(job.outbox)] = job.outbox
                try:
                    for k, prompt in enumerate(job.prompts):
                        job.outcome.prompt_tokens += self.batch.add(prompt, job.cfg, job.n, job, first=k * job.n)
                except Exception as e:  # a bug: the request is answered 500
                    job.outcome.error = e
                    job.cancel.set()  # its rows already added leave at the next step
            try:
                if self.batch:
                    rows = self.batch.step()
                    if rows:
                        self.pool.metrics.observe(
                            "lstm_text_generation_batch_rows", rows, BATCH_BUCKETS, model=self.name
                        )
            except Exception as e:  # a bug: every job in the batch is answered 500, the engine goes on
                log.exception("generation step failed")
                for sink in self.batch.fail():
                    assert isinstance(sink, Job)  # the only sinks this engine adds
                    sink.outcome.error = e
                    sink.left = 0
            for job in [j for j in self.jobs if j.left <= 0 or j.outcome.error is not None]:
                self.jobs.remove(job)
                self.pool._finished(job)
            self._hand_over(force=not self.batch)  # the ENDs now when nothing is left to step

    def _hand_over(self, force: bool = False) -> None:
        """Hand the output so far to the event loops when it is due (``EVENT_SECONDS``), at once when a job's
        first text waits or ``force``: one wake-up per loop for all its jobs."""
        now = time.perf_counter()
        boxes = self._boxes.values()
        if force or now >= self._next_flush or any(box.urgent for box in boxes):
            for box in boxes:
                box.flush()
            self._boxes = {id(j.outbox): j.outbox for j in self.jobs}
            self._next_flush = now + min(EVENT_SECONDS * sum(j.stream for j in self.jobs), MAX_HOLD)

    def outbox(self, loop: asyncio.AbstractEventLoop) -> Outbox:
        """The outbox of ``loop``'s jobs (called with the pool's lock held)."""
        outbox = self.outboxes.get(loop)
        if outbox is None:
            outbox = self.outboxes[loop] = Outbox(loop)
        return outbox


class GenerationPool:
    """One ``Engine`` per language model; at most ``limits.workers`` jobs stepped at once, ``limits.max_queue``
    more waiting for a place (one more is answered 503)."""

    def __init__(self, limits: Limits, metrics: Metrics):
        self.limits, self.metrics = limits, metrics
        self._cv = threading.Condition()
        self._waiting: deque[tuple[Engine, Job]] = deque()  # admitted, not stepped yet
        self._engines: dict[str, Engine] = {}
        self.admitted = self.running = 0
        self._closed = False
        metrics.gauge("lstm_text_queue_depth", lambda: self.admitted - self.running, kind="generate")
        metrics.gauge("lstm_text_active_generations", lambda: self.running)

    def submit(self, name: str, model, prompts: list[str], cfg: GenerateConfig, n: int, stream: bool = True) -> Job:
        """Start a job (``n`` samples of each prompt); raises ``Busy`` when the queue is full."""
        loop = asyncio.get_running_loop()
        with self._cv:
            if self._closed:
                raise Busy("the server is shutting down")
            workers, queue = self.limits.workers, self.limits.max_queue
            if self.admitted >= workers + queue:
                raise Busy(
                    f"{workers} generations are running and {self.admitted - workers} waiting "
                    f"(--workers {workers}, --max-queue {queue})"
                )
            self.admitted += 1
            if name not in self._engines:
                self._engines[name] = Engine(self, name, model)
            engine = self._engines[name]
            job = Job(engine.outbox(loop), name, model, prompts, cfg, n, stream)
            self._waiting.append((engine, job))
            self._cv.notify_all()
        return job

    def _take(self, engine: Engine, busy: bool) -> list[Job] | None:
        """The jobs ``engine`` starts before its next step (waits while it has nothing to do); None: closed and
        drained, the engine stops."""
        with self._cv:
            while True:
                new = []
                for item in list(self._waiting):
                    if self.running >= self.limits.workers:
                        break
                    if item[0] is engine:
                        self._waiting.remove(item)
                        self.running += 1
                        new.append(item[1])
                if new or busy or engine.jobs:
                    return new
                if self._closed and not any(e is engine for e, _ in self._waiting):
                    return None
                self._cv.wait()

    def _finished(self, job: Job) -> None:
        with self._cv:
            self.running -= 1
            self.admitted -= 1
            self._cv.notify_all()
        out = job.outcome
        self.metrics.inc("lstm_text_generated_tokens_total", sum(out.tokens), model=job.name)
        self.metrics.inc("lstm_text_prompt_tokens_total", out.prompt_tokens, model=job.name)
        if out.cancelled:
            self.metrics.inc("lstm_text_generations_cancelled_total", model=job.name)
        job.put(END)

    def close(self) -> None:
        """Refuse new jobs and wait for the running and queued ones (SIGTERM drains them)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            engines = list(self._engines.values())
        for e in engines:
            e.thread.join()

"""Micro-batching for /v1/classify: requests that arrive close together are classified as one batch.

    event loop                      worker thread (one per classifier)
    r1 [a b] --+
    r2 [c]   --+--> queue --> first job, then wait <= batch_wait_ms for more --> probs([a b c d e])
    r3 [d e] --+                                                                   |
    r1 <- [a b]   r2 <- [c]   r3 <- [d e]   (each request's results in its own order) <-+

The wait is spent only while more classify requests have reached the server but not the queue yet (``arriving``):
a lone request is answered at once, and under load the worker also takes whatever queued while it was busy.
The classifier sorts a batch by length and pads each of its 512-line sub-batches only to their own longest
line, so batching unrelated requests costs no padding; it amortises the per-time-step overhead instead.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from ..infer.classifier import read_probs, result
from .limits import Busy
from .metrics import BATCH_BUCKETS, Metrics


@dataclass
class Job:
    texts: list[str]
    threshold: float
    abstain: str
    future: Future


class ClassifyBatcher:
    """Collects classify requests on a bounded queue and answers them from one worker thread in batches."""

    def __init__(
        self, name: str, model, *, max_queue: int, max_batch: int, wait_s: float, metrics: Metrics, arriving=None
    ):
        """``arriving()``: how many classify requests the server has received that no batcher has queued yet."""
        self.name, self.model, self.metrics = name, model, metrics
        self.max_queue, self.max_batch, self.wait_s = max_queue, max_batch, wait_s
        self.arriving = arriving or (lambda: 0)
        self.unanswered = 0  # jobs queued or in the batch being computed
        self._jobs: deque[Job] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"classify-{name}", daemon=True)
        metrics.gauge("lstm_text_queue_depth", lambda: len(self._jobs), kind="classify", model=name)
        self._thread.start()

    def submit(self, texts: list[str], threshold: float = 0.0, abstain: str = "neutral") -> Future:
        """A future of one record per text ({"text", "label", "score", "probs", "lang"}, as ``classify --format
        jsonl``), in the order given; raises ``Busy`` when ``max_queue`` requests are already waiting."""
        job = Job(texts, threshold, abstain, Future())
        with self._cv:
            if self._closed:
                raise Busy("the server is shutting down")
            if len(self._jobs) >= self.max_queue:
                raise Busy(f"{len(self._jobs)} classify requests are waiting (--max-queue {self.max_queue})")
            self._jobs.append(job)
            self.unanswered += 1
            self._cv.notify()
        return job.future

    def close(self) -> None:
        """Answer the jobs already queued, then stop the worker."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()

    def _take(self) -> list[Job] | None:
        with self._cv:
            while not self._jobs and not self._closed:
                self._cv.wait()
            if not self._jobs:
                return None  # closed and drained
            # the bounded wait: requests on their way may join, until the deadline or a full batch
            deadline = time.monotonic() + self.wait_s
            while not self._closed and sum(len(j.texts) for j in self._jobs) < self.max_batch and self.arriving() > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.0005))  # ``arriving`` changes without a notify: look again soon
            jobs: list[Job] = []
            n = 0
            while self._jobs and (not jobs or n + len(self._jobs[0].texts) <= self.max_batch):
                jobs.append(self._jobs.popleft())
                n += len(jobs[-1].texts)
            return jobs

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            jobs = [j for j in taken if j.future.set_running_or_notify_cancel()]
            try:
                for j, r in zip(jobs, self._classify(jobs)):
                    j.future.set_result(r)
            except Exception as e:  # a bug: every request of the batch gets it (answered 500)
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
            with self._cv:
                self.unanswered -= len(taken)

    def _classify(self, jobs: list[Job]) -> list[list[dict]]:
        """One batch over all the jobs' texts (``read_probs``: those in the languages the model or its companion
        reads), then each job's records in its own order, each with its "lang"."""
        m = self.model
        labels = m.classifier.cfg.labels
        every = [(k, i) for k, j in enumerate(jobs) for i in range(len(j.texts))]
        langs, probs = read_probs(m.classifier, m.tokenizer, [jobs[k].texts[i] for k, i in every], m.gate, m.companion)
        assert langs is not None  # a gate gives every text a language
        found = dict(zip(every, zip(langs, probs)))
        n = sum(len(j.texts) for j in jobs)
        self.metrics.inc("lstm_text_classified_texts_total", n, model=self.name)
        self.metrics.observe("lstm_text_classify_batch_texts", n, BATCH_BUCKETS, model=self.name)
        return [
            [
                {"text": t, **result(labels, found[k, i][1], j.threshold, j.abstain), "lang": found[k, i][0]}
                for i, t in enumerate(j.texts)
            ]
            for k, j in enumerate(jobs)
        ]

"""Counters, gauges and histograms of a server, rendered in the Prometheus text format (no client library).

Worker threads and the event loop both update them, so every change holds one lock.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)

HELP = {
    "lstm_text_requests_total": ("counter", "HTTP requests answered, by endpoint and status."),
    "lstm_text_request_seconds": ("histogram", "Time from request to the end of the response, by endpoint."),
    "lstm_text_prompt_tokens_total": ("counter", "Prompt tokens read, by model."),
    "lstm_text_generated_tokens_total": ("counter", "Tokens generated, by model."),
    "lstm_text_generations_cancelled_total": ("counter", "Generations stopped because the client went away."),
    "lstm_text_classified_texts_total": ("counter", "Texts classified, by model."),
    "lstm_text_classify_batch_texts": ("histogram", "Texts per classify batch (several requests batched together)."),
    "lstm_text_queue_depth": ("gauge", "Requests waiting for a worker, by kind."),
    "lstm_text_active_generations": ("gauge", "Generations running now."),
    "process_resident_memory_bytes": ("gauge", "Resident memory of the server process."),
}


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    esc = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, esc)) + "}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self._hists: dict[str, dict[tuple, list]] = defaultdict(dict)  # name -> labels -> [counts, sum, n]
        self._buckets: dict[str, tuple] = {}
        self._gauges: dict[str, dict[tuple, Callable[[], float]]] = defaultdict(dict)  # read when rendered

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] += value

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = value

    def gauge(self, name: str, read, **labels: str) -> None:
        """Register a gauge read at render time (e.g. a queue's length)."""
        with self._lock:
            self._gauges[name][tuple(sorted(labels.items()))] = read

    def observe(self, name: str, value: float, buckets: tuple = LATENCY_BUCKETS, **labels: str) -> None:
        with self._lock:
            self._buckets.setdefault(name, buckets)
            h = self._hists[name].setdefault(tuple(sorted(labels.items())), [[0] * len(buckets), 0.0, 0])
            for i, b in enumerate(buckets):
                if value <= b:
                    h[0][i] += 1
            h[1] += value
            h[2] += 1

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        self.set("process_resident_memory_bytes", rss_bytes())
        lines: list[str] = []
        with self._lock:
            values = {n: dict(v) for n, v in self._values.items()}
            for name, reads in self._gauges.items():
                values.setdefault(name, {}).update({k: float(read()) for k, read in reads.items()})
            hists = {n: {k: (list(h[0]), h[1], h[2]) for k, h in v.items()} for n, v in self._hists.items()}
        for name in sorted(set(values) | set(hists)):
            kind, text = HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for key, v in sorted(values.get(name, {}).items()):
                lines.append(f"{name}{_labels(key)} {_num(v)}")
            for key, (counts, total, n) in sorted(hists.get(name, {}).items()):
                for b, c in zip(self._buckets[name], counts):
                    lines.append(f"{name}_bucket{_labels(key + (('le', f'{b:g}'),))} {c}")
                lines.append(f"{name}_bucket{_labels(key + (('le', '+Inf'),))} {n}")
                lines.append(f"{name}_sum{_labels(key)} {_num(total)}")
                lines.append(f"{name}_count{_labels(key)} {n}")
        return "\n".join(lines) + "\n"

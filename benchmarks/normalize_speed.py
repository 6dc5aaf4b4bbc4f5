"""How many lines per second ``normalize`` handles: raw text as people type it beside SST's tokenized text,
each line seen many times, as in a corpus (words recur, so most chunks are one lookup in its cache). The fast
suite checks the cache's work instead (``tests/test_normalize.py::test_speed``); this is the figure. It once
was a test asking for more than 10,000 lines/s, which a busy machine failed.

Run: ``python benchmarks/normalize_speed.py`` (``--lines N``, default 3,000; ``--repeat R``, the best of R).
"""

from __future__ import annotations

import argparse
import time

from lstm_text.normalize import normalize

LINES = [
    "Doesn't work!!! WORST customer service EVER :(",
    "It's great, isn't it? I can't believe it won't end.",
    "The writer/director's cut -- a cliché-ridden, naïve, Amélie-like mess… 👍 http://example.com",
    "does n't work ! ! !",
    "the writer\\/director 's cut is -lrb- mostly -rrb- a `` triumph '' .",
    "i could n't care less about the u.s. ...",
]
FLOOR = 10_000  # lines/s the test used to ask for


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    lines = (LINES * (a.lines // len(LINES) + 1))[: a.lines]
    best = 0.0
    for _ in range(a.repeat):
        start = time.perf_counter()
        for line in lines:
            normalize(line)
        best = max(best, len(lines) / (time.perf_counter() - start))
    print(f"normalize: {best:,.0f} lines/s (best of {a.repeat}; {FLOOR:,} was the old test's floor)")


if __name__ == "__main__":
    main()

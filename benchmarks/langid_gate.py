"""Language ID in classify: how often langid names each dev set's language, and which lines an English model
(``sentiment``) refuses, for a few thresholds and prefix lengths.

Per dev set (every ``multilingual/<folder>/dev.tsv`` of ``$LSTM_TEXT_DATA``, and the English dev sets of
``splits.py``: tweets, reddit, sst2, imdb, pros_cons): the share of lines langid names correctly, and the share
of lines a model that reads English refuses (``langid.Gate``: langid gives English at most 1 - threshold of its
probability, or the line's letters are mostly characters it never saw). Then the macro average of the correct
shares over languages. English refused must stay ~0; every other folder's high.

Run: ``PYTHONPATH=benchmarks LSTM_TEXT_DATA=../shared/data python benchmarks/langid_gate.py`` (the built-in
langid; ``--langid runs/langid/run`` a candidate; ``--prefix 48,64,96`` the characters read; ``--json F``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from langid_data import LANG  # noqa: E402

from lstm_text import langid  # noqa: E402
from lstm_text.data.labelled import read_labelled  # noqa: E402

from splits import data_dir, dev_set  # noqa: E402

ENGLISH = ("tweets", "reddit", "sst2", "imdb", "pros_cons")


def dev_sets() -> dict[str, tuple[str, list[str]]]:
    """{name: (ISO code, texts)}: every multilingual dev folder and the English dev sets."""
    root = data_dir() / "multilingual"
    sets = {f: (code, [t for t, _ in read_labelled([root / f / "dev.tsv"])]) for f, code in sorted(LANG.items())}
    return sets | {name: ("en", [t for t, _ in dev_set(name)]) for name in ENGLISH}


def measure(sets, thresholds: list[float], reads: tuple[str, ...] = ("en",)) -> dict:
    rows = {}
    seconds = lines = 0
    for name, (code, texts) in sets.items():
        t = time.perf_counter()
        found = langid.identify(texts)
        seconds += time.perf_counter() - t
        lines += len(texts)
        refused = {}
        for th in thresholds:  # langid.Gate as classify runs it (a model that reads ``reads``)
            refused[f"{th:g}"] = float(np.mean([not ok for _, ok in langid.Gate(reads, th)(texts)]))
        rows[name] = {
            "lang": code,
            "lines": len(texts),
            "correct": float(np.mean([lang == code for lang, _ in found])),
            "unknown": int(sum(lang == langid.UNKNOWN for lang, _ in found)),
            "refused": refused,
        }
    per_lang: dict[str, list[float]] = {}
    for r in rows.values():
        per_lang.setdefault(r["lang"], []).append(r["correct"])
    macro = float(np.mean([np.mean(v) for v in per_lang.values()]))
    return {"sets": rows, "macro_correct": macro, "us_per_line": 1e6 * seconds / lines}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--langid", help="a candidate langid model file (langid_fit.py's) instead of the built-in")
    ap.add_argument("--prefix", default=str(langid.PREFIX), help="comma-separated characters read")
    ap.add_argument("--thresholds", default="0.8,0.9,0.95,0.99")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if a.langid:
        candidate = langid.Langid.read(a.langid)
        langid._langid = lambda: candidate  # the benchmark's one hook: identify() reads this model instead
    sets = dev_sets()
    thresholds = [float(x) for x in a.thresholds.split(",")]
    out = {}
    for prefix in (int(x) for x in a.prefix.split(",")):
        langid.PREFIX = prefix  # read by identify() at each call
        r = out[str(prefix)] = measure(sets, thresholds)
        print(f"prefix {prefix}: langid correct (macro over languages) {r['macro_correct']:.3f}, "
              f"{r['us_per_line']:.0f} us/line")  # fmt: skip
        print(f"  {'set':<11} {'lang':<4} {'lines':>6} {'correct':>7} {'unknown':>7}  refused at " + " ".join(
            f"{t:>5g}" for t in thresholds))  # fmt: skip
        for name, s in r["sets"].items():
            refused = " ".join(f"{s['refused'][f'{t:g}']:>5.3f}" for t in thresholds)
            print(f"  {name:<11} {s['lang']:<4} {s['lines']:>6,} {s['correct']:>7.3f} {s['unknown']:>7}  {refused}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

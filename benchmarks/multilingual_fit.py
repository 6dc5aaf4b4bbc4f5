"""Fit the built-in ``multilingual`` sentiment model (``lstm_text.ngram.fit``) on the train splits of every folder
of ``$LSTM_TEXT_DATA/multilingual`` and report it on each folder's dev split: macro-F1 and accuracy with the
language langid names for each line (as ``classify`` reads it) and with the folder's own language.

The training lines are each folder's train split less every line that matches a line of any folder's dev split
(lower case, links, @mentions and punctuation removed): ``de`` and ``xlmt-de`` share SB10k, ``ar`` and ``xlmt-ar``
SemEval-2017 Arabic, ``es`` and ``xlmt-es`` Spanish tweets, so one's train holds some of the other's dev.
English weights too (``ENGLISH``: ``splits.py``'s train parts of tweets, Reddit, SST-5-3 and the objective
sentences; ``--no-english`` leaves them out), which ``sentiment3`` joins with its LSTM on English lines; they are
reported on those sets' dev parts. Each language is fitted apart, so English changes no other language's weights.

Run (the Makefile's ``pretrained`` target does): ``python benchmarks/multilingual_fit.py --out
lstm_text/pretrained/multilingual/multilingual.safetensors`` (and its card, README.md beside it; ``--json F``
writes the figures). Needs scikit-learn (the dev extra, which `make install` installs).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if _SHARED.is_dir():  # the project's machines keep the data beside the checkout, as the Makefile assumes
    os.environ.setdefault("LSTM_TEXT_DATA", str(_SHARED))

from multilingual import read_tsv, scores  # noqa: E402

from lstm_text import langid, ngram  # noqa: E402

import splits  # noqa: E402  (beside this script)

# each folder's language as langid names it (ISO 639: 639-1 where there is one, else 639-3)
AFRI = {"amh": "am", "arq": "arq", "ary": "ary", "hau": "ha", "ibo": "ig", "kin": "rw", "pcm": "pcm", "por": "pt",
        "swa": "sw", "tso": "ts", "twi": "tw", "yor": "yo"}  # fmt: skip


# English, which sentiment3 reads with its LSTM and this model together (pretrained.CARDS' "mix"): splits.py's
# train parts, each repeated this many times (SST-5 and the objective sentences twice: tweets and Reddit comments
# outnumber them ten to one)
ENGLISH = {"tweets": 1, "reddit": 1, "sst5-3": 2, "objective": 2}
BITS = {"en": 19}  # 2**19 English rows, as before quantizing (not bits_for's 2**21): sentiment3's English barely moves


def lang_of(folder: str) -> str:
    """The language of a folder: ``xlmt-de`` -> de, ``afri-hau`` -> ha, ``ko`` -> ko."""
    kind, _, code = folder.rpartition("-")
    return AFRI[code] if kind == "afri" else code


def key(text: str) -> str:
    """A line as the data's README matches duplicates: lower case, links, @mentions and punctuation removed."""
    text = re.sub(r"https?://\S+|@\w+", " ", text.lower())
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="the model file to write (and README.md beside it)")
    ap.add_argument("--C", type=float, default=4.0, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--max-iter", type=int, default=1000, help="lbfgs iterations at most (per language)")
    ap.add_argument("--folders", default="", help="comma-separated folder names (default: all)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--no-english", action="store_true", help="leave English out (the folders only)")
    a = ap.parse_args()

    root = Path(os.environ["LSTM_TEXT_DATA"]) / "multilingual"
    folders = a.folders.split(",") if a.folders else sorted(p.name for p in root.iterdir() if (p / "dev.tsv").is_file())
    devs = {f: read_tsv(root / f / "dev.tsv") for f in folders}
    held = {key(t) for rows in devs.values() for t, _ in rows}
    texts, langs, labels, dropped = [], [], [], 0
    for f in folders:
        for t, y in read_tsv(root / f / "train.tsv"):
            if key(t) in held:
                dropped += 1
                continue
            texts.append(t)
            langs.append(lang_of(f))
            labels.append(y)
    print(f"{len(texts):,} training lines from {len(folders)} folders ({dropped:,} dropped: in a dev split)")
    english = {} if a.no_english else ENGLISH
    english_lines = {}
    for name, times in english.items():
        rows = splits.train_set(name)
        english_lines[name] = len(rows)
        texts += [t for t, _ in rows] * times
        labels += [y for _, y in rows] * times
        langs += ["en"] * (len(rows) * times)
        print(f"English {name}: {len(rows):,} lines x {times}")
    t0 = time.perf_counter()
    m = ngram.fit(texts, langs, labels, C=a.C, max_iter=a.max_iter, bits=BITS)
    secs = time.perf_counter() - t0
    print(f"fitted in {secs:.0f} s", flush=True)

    figures: dict[str, dict] = {}
    for f, rows in devs.items():
        gold, lines = [y for _, y in rows], [t for t, _ in rows]
        found = [lang for lang, _ in langid.identify(lines)]
        row = {}
        for how, ls in (("langid", found), ("folder", [lang_of(f)] * len(lines))):
            pred = [m.labels[i] for i in m.probs(lines, ls).argmax(1)]
            row[how] = scores(gold, pred)
        row["named_right"] = float(np.mean([x == lang_of(f) for x in found]))
        figures[f] = row
        print(f"{f:9} macro-F1 {row['langid']['macro_f1']:.3f} (folder's language: {row['folder']['macro_f1']:.3f}), "
              f"langid right {row['named_right']:.3f}", flush=True)  # fmt: skip
    mean = float(np.mean([r["langid"]["macro_f1"] for r in figures.values()]))
    print(f"mean dev macro-F1 over {len(figures)} folders: {mean:.4f}")
    english_dev = {}
    for name in english:
        rows = splits.dev_set(name)
        pred = [m.labels[i] for i in m.probs([t for t, _ in rows], ["en"] * len(rows)).argmax(1)]
        english_dev[name] = scores([y for _, y in rows], pred)
        print(
            f"English {name} dev (alone, without sentiment3's LSTM): macro-F1 {english_dev[name]['macro_f1']:.3f}, "
            f"accuracy {english_dev[name]['acc']:.3f}"
        )
    m.facts = {
        "train_lines": len(texts), "dropped_in_dev": dropped, "folders": folders, "C": a.C,
        "max_iter": a.max_iter,
        "fit_seconds": round(secs, 1), "dev_mean_macro_f1": mean,
        "dev": {f: {"macro_f1": r["langid"]["macro_f1"], "acc": r["langid"]["acc"]} for f, r in figures.items()},
        "english": {name: {"times": k, "train_lines": english_lines[name]} for name, k in english.items()},
        "english_dev": english_dev,
    }  # fmt: skip
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        m.save(a.out)
        (a.out.parent / "README.md").write_text(ngram.card(m), encoding="utf-8")
        print(f"wrote {a.out} ({a.out.stat().st_size / 2**20:.1f} MB)")
    if a.json:
        a.json.write_text(json.dumps({"facts": m.facts, "folders": figures}, indent=1))


if __name__ == "__main__":
    sys.exit(main())

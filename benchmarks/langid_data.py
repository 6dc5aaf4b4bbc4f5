"""The built-in language-ID model's data: ``runs/langid/{train,dev}.tsv`` (``label<TAB>text``, the label an ISO 639
code), a language-balanced sample of every ``multilingual/<folder>`` of ``$LSTM_TEXT_DATA`` plus English.

Per language, ``--train`` lines (default 4,000; English ``--english`` times as many: every built-in reads it,
and refusing an English line costs more than missing another language) from its folders' train splits and
``--dev`` lines (300) from their dev splits, shared evenly between the folders (and English sources) that hold
it, drawn with ``--seed``. English comes from ``splits.py``'s train and dev parts of tweets, Reddit, SST-2, pros
and cons and IMDB, so the English dev sets the classifiers are judged on are never trained on. Each text is
written as what langid reads of it (``lstm_text.langid.head_of``: its first characters, links and @mentions
dropped), and a text without letters is left out: the model is trained and selected on what it reads in use.

Run (the Makefile's ``pretrained`` target does): ``PYTHONPATH=benchmarks python benchmarks/langid_data.py``.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from lstm_text.data.labelled import read_labelled
from lstm_text.langid import head_of

from splits import data_dir, dev_set, train_set

# folder -> ISO 639 code (639-1 where there is one): the xlmt-* tweets join their language's own folder
LANG = {
    "afri-amh": "am", "afri-arq": "arq", "afri-ary": "ary", "afri-hau": "ha", "afri-ibo": "ig", "afri-kin": "rw",
    "afri-pcm": "pcm", "afri-por": "pt", "afri-swa": "sw", "afri-tso": "ts", "afri-twi": "tw", "afri-yor": "yo",
    "ar": "ar", "de": "de", "es": "es", "id": "id", "ko": "ko", "pl": "pl", "th": "th", "vi": "vi", "zh": "zh",
    "xlmt-ar": "ar", "xlmt-de": "de", "xlmt-es": "es", "xlmt-fr": "fr", "xlmt-hi": "hi", "xlmt-it": "it",
    "xlmt-pt": "pt",
}  # fmt: skip
ENGLISH = {"train": ("tweets", "reddit", "sst2", "pros_cons", "imdb"), "dev": ("tweets", "reddit", "sst2")}


def texts(pairs) -> list[str]:
    return [" ".join(t.split()) for t, _ in pairs if t.strip()]


def sources(part: str, folders: dict[str, str]) -> dict[str, list[list[str]]]:
    """Per language, the texts of each of its sources in ``part`` (train or dev)."""
    root = data_dir() / "multilingual"
    out: dict[str, list[list[str]]] = {}
    for folder, lang in folders.items():
        out.setdefault(lang, []).append(texts(read_labelled([root / folder / f"{part}.tsv"])))
    get = train_set if part == "train" else dev_set
    out["en"] = [texts(get(name)) for name in ENGLISH[part]]
    return out


def sample(by_lang: dict[str, list[list[str]]], per_lang: dict[str, int], rng: random.Random) -> list[tuple[str, str]]:
    """(lang, text) rows: ``per_lang[lang]`` lines a language (fewer where its sources hold fewer), its sources sharing
    them evenly, each text as langid reads it (``head_of``)."""
    rows = []
    for lang, lists in sorted(by_lang.items()):
        per = per_lang[lang] // len(lists)
        for got in lists:
            heads = (head_of(t) for t in rng.sample(got, min(per, len(got))))
            rows += [(lang, h) for h in heads if any(map(str.isalpha, h))]  # a link alone says nothing
    return rows


def write(rows: list[tuple[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("label\ttext\n")
        f.writelines(f"{lang}\t{text}\n" for lang, text in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/langid"), help="folder for train.tsv and dev.tsv")
    ap.add_argument("--train", type=int, default=8000, help="training lines per language")
    ap.add_argument("--dev", type=int, default=300, help="dev lines per language")
    ap.add_argument("--english", type=int, default=4, help="English has this many times the training lines")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    for part, n in (("train", a.train), ("dev", a.dev)):
        by_lang = sources(part, LANG)
        counts = {lang: n * (a.english if lang == "en" and part == "train" else 1) for lang in by_lang}
        rows = sample(by_lang, counts, rng)
        write(rows, a.out / f"{part}.tsv")
        print(f"{a.out / part}.tsv: {len(rows):,} lines, {len({r[0] for r in rows})} languages")


if __name__ == "__main__":
    main()

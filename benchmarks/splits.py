"""The sentiment dev sets models are judged on, and the train parts kept apart from them (benchmarks and the
Makefile's ``pretrained`` target; not part of the installed package: import it as ``splits`` beside this file).

Published dev files are used as published; where a source has none, the dev part is cut by a hash of the text, so
it depends neither on file order nor on the machine, and duplicates land on the same side.

    dev set     dev rows  train rows  from (under LSTM_TEXT_DATA)
    sst2             872       6,920  sst2/dev.tsv; sst2/train.tsv                   negative/positive
    sst5-3         1,101       8,543  sst5/dev.tsv; sst5/train.tsv, very x -> x      negative/neutral/positive
    imdb           2,524      22,476  imdb/train.tsv, is_dev(text, 0.1)              negative/positive
    pros_cons      4,526      41,341  pros_cons/train.tsv, is_dev(text, 0.1)         negative/positive
    objective        801       3,199  subj/objective.txt, is_dev(line, 0.2)          neutral
    tweets         1,915      45,596  tweets/dev.tsv; tweets/train.tsv               negative/neutral/positive
    reddit         4,511      35,693  reddit/dev.tsv; reddit/train.tsv               negative/neutral/positive
    sst2-phrases       -      67,349  sst2/train_phrases.tsv, whole (train only; kept apart from sst2 dev)
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lstm_text.data.labelled import map_labels, read_labelled
from lstm_text.data.text import read_text
from lstm_text.errors import LstmTextError

DATA_ENV = "LSTM_TEXT_DATA"  # names the shared data folder; the Makefile sets it to ../shared/data
_BUCKETS = 10_000  # hash buckets: fractions are exact to 1/10,000
_SST5_TO_3 = (("very negative", "negative"), ("very positive", "positive"))


def is_dev(text: str, fraction: float) -> bool:
    """Whether ``text`` falls in the dev part: crc32 of its UTF-8 bytes, modulo 10,000, below fraction * 10,000.

    zlib.crc32 rather than ``hash()``: str hashes are salted per process, crc32 is the same everywhere.
    """
    if not 0.0 <= fraction <= 1.0:
        raise LstmTextError(f"the dev fraction must be between 0 and 1, got {fraction}")
    # round: 0.07 * 10_000 is 700.0000000000001, and bucket 700 is not in a 7% split
    return zlib.crc32(text.encode("utf-8")) % _BUCKETS < round(fraction * _BUCKETS)


def split_pairs(
    pairs: Iterable[tuple[str, str]], fraction: float
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, dev) of (text, label) pairs by ``is_dev(text, fraction)``, each in the input's order."""
    train: list[tuple[str, str]] = []
    dev: list[tuple[str, str]] = []
    for pair in pairs:
        (dev if is_dev(pair[0], fraction) else train).append(pair)
    return train, dev


@dataclass(frozen=True)
class SentimentSet:
    """A labelled source: its dev part (a published file, or a hash cut of ``train_file``) and its train part."""

    name: str
    train_file: str  # under the data folder; .tsv (label<TAB>text) or .txt (one text a line, all labelled ``label``)
    dev_file: str = ""  # a published dev file; empty: the dev part is is_dev(text, fraction) of train_file
    fraction: float = 0.0  # share of train_file that is dev, when there is no dev_file
    label_map: tuple[tuple[str, str], ...] = ()  # labels merged in both parts (old, new)
    label: str = ""  # the label of every line of a .txt file
    about: str = ""  # one line for tables and docs


_DEV = [
    SentimentSet("sst2", "sst2/train.tsv", dev_file="sst2/dev.tsv", about="SST-2 dev as published, binary"),
    SentimentSet(
        "sst5-3",
        "sst5/train.tsv",
        dev_file="sst5/dev.tsv",
        label_map=_SST5_TO_3,
        about="SST-5 dev as published, very negative/positive merged: three classes",
    ),
    SentimentSet("imdb", "imdb/train.tsv", fraction=0.1, about="IMDB train reviews with is_dev(text, 0.1), binary"),
    SentimentSet(
        "pros_cons", "pros_cons/train.tsv", fraction=0.1, about="pros and cons with is_dev(text, 0.1), binary"
    ),
    SentimentSet(
        "objective",
        "subj/objective.txt",
        fraction=0.2,
        label="neutral",
        about="objective plot sentences with is_dev(line, 0.2), all neutral",
    ),
    SentimentSet(
        "tweets",
        "tweets/train.tsv",
        dev_file="tweets/dev.tsv",
        about="English tweets (SemEval 2016 dev), three classes",
    ),
    SentimentSet(
        "reddit", "reddit/train.tsv", dev_file="reddit/dev.tsv", about="Reddit comments (GoEmotions dev), three classes"
    ),
]
SENTIMENT_DEV: dict[str, SentimentSet] = {s.name: s for s in _DEV}
"""The dev sets sentiment models are scored on (``dev_set``); never train on them."""

SENTIMENT_TRAIN: dict[str, SentimentSet] = {
    **SENTIMENT_DEV,
    # GLUE's phrases of the SST training split: no SST dev sentence is among them
    "sst2-phrases": SentimentSet(
        "sst2-phrases",
        "sst2/train_phrases.tsv",
        dev_file="sst2/dev.tsv",
        about="GLUE SST-2 train phrases, whole, binary",
    ),
}
"""The train parts (``train_set``): each source's rows outside its dev set."""


def data_dir() -> Path:
    """The shared data folder named by ``LSTM_TEXT_DATA``."""
    env = os.environ.get(DATA_ENV, "")
    if not env:
        raise LstmTextError(
            f"{DATA_ENV} is not set; point it at the shared data folder (the Makefile sets it to ../shared/data)"
        )
    p = Path(env)
    if not p.is_dir():
        raise LstmTextError(f"{DATA_ENV}={env} is not a folder; point it at the shared data folder")
    return p


def dev_set(name: str) -> list[tuple[str, str]]:
    """(text, label) pairs of the named dev set (see ``SENTIMENT_DEV``), in file order."""
    s = _lookup(name, SENTIMENT_DEV, "dev")
    if s.dev_file:
        return _pairs(s, s.dev_file)
    return [p for p in _pairs(s, s.train_file) if is_dev(p[0], s.fraction)]


def train_set(name: str) -> list[tuple[str, str]]:
    """(text, label) pairs of the named train part (see ``SENTIMENT_TRAIN``), in file order.

    Beside a published dev file, train rows whose text is also a dev text are dropped (SST-5 train repeats one
    dev sentence); a hash cut keeps the two parts apart by construction.
    """
    s = _lookup(name, SENTIMENT_TRAIN, "train")
    pairs = _pairs(s, s.train_file)
    if s.dev_file:
        dev = {t for t, _ in _pairs(s, s.dev_file)}
        return [p for p in pairs if p[0] not in dev]
    return [p for p in pairs if not is_dev(p[0], s.fraction)]


sentiment_train = train_set  # the name training recipes use


def write_split(name: str, part: str, path: str | Path) -> int:
    """Write the named dev or train part as a ``label<TAB>text`` TSV (readable by ``read_labelled`` and the CLI).

    Tabs and line breaks inside a text become spaces, so each example stays one row. Returns the row count.
    """
    if part not in ("dev", "train"):
        raise LstmTextError(f"part must be 'dev' or 'train', got {part!r}")
    pairs = dev_set(name) if part == "dev" else train_set(name)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        f.write("label\ttext\n")
        for text, label in pairs:
            f.write(f"{label}\t{_one_line(text)}\n")
    return len(pairs)


def write_splits(folder: str | Path) -> dict[str, int]:
    """Every dev part as ``FOLDER/dev/NAME.tsv`` and every train part as ``FOLDER/train/NAME.tsv`` (the files
    ``make pretrained`` trains and selects on); {"dev/NAME": rows, ...}."""
    folder = Path(folder)
    rows = {f"dev/{n}": write_split(n, "dev", folder / "dev" / f"{n}.tsv") for n in SENTIMENT_DEV}
    return rows | {f"train/{n}": write_split(n, "train", folder / "train" / f"{n}.tsv") for n in SENTIMENT_TRAIN}


def _one_line(text: str) -> str:
    # read_labelled splits records on \n, \r and \r\n only; the tab is the one field separator
    return text.replace("\r\n", " ").translate({ord("\t"): " ", ord("\n"): " ", ord("\r"): " "})


def _lookup(name: str, registry: dict[str, SentimentSet], part: str) -> SentimentSet:
    if name not in registry:
        raise LstmTextError(f"no sentiment {part} set named {name!r}; known: {', '.join(registry)}")
    return registry[name]


def _pairs(s: SentimentSet, file: str) -> list[tuple[str, str]]:
    path = data_dir() / file
    if not path.is_file():
        raise LstmTextError(
            f"{DATA_ENV}={os.environ[DATA_ENV]} has no {file} (needed by the sentiment set {s.name!r}); "
            f"point {DATA_ENV} at the shared data folder"
        )
    st = path.stat()
    pairs = list(_read(str(path), st.st_mtime_ns, st.st_size, s.label))  # a copy: callers may edit their list
    return map_labels(pairs, dict(s.label_map))


@functools.lru_cache(maxsize=8)  # dev and train parts of one source read its file once
def _read(path: str, mtime_ns: int, size: int, label: str) -> tuple[tuple[str, str], ...]:
    if not label:
        return tuple(read_labelled([path]))
    lines = (line.rstrip("\r") for line in read_text(path).split("\n"))
    return tuple((line, label) for line in lines if line.strip())

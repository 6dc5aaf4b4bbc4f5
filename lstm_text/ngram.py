"""Sentiment in the languages the English built-ins do not read: ``NgramClassifier``, a linear model over the
TF-IDF weighted, hashed character 1-5-grams of a line, with a copy of every n-gram for the line's language
(langid's), so one model holds weights shared by every language (emoji, names, loanwords) beside each language's
own (the feature augmentation of Daumé III 2007, "Frustratingly easy domain adaptation").

The built-in ``multilingual`` model is one of these, fitted on the 28 folders of ``../shared/data/multilingual``
(``benchmarks/multilingual_fit.py``); ``sentiment`` and ``sentiment3`` hand it the lines langid finds in one of
its languages (``Model.classify``).

Why not an LSTM: a multilingual BiLSTM over the same data (unigram SentencePiece, 96 units) reached a mean dev
macro-F1 of 0.589 across the folders, below a character TF-IDF + logistic regression trained per folder (0.638),
in 78 minutes of training; a linear model over character n-grams is the strong baseline for short texts in
languages with little data, and this one is fitted in minutes and reads over 10,000 lines/s on one core
(benchmarks/README.md, "Sentiment in other languages"). The features are computed here, not by scikit-learn's
vectorizers: classify must not import scikit-learn (nor torch), and hashing keeps the model a fixed size.
Fitting is scikit-learn's ``LogisticRegression`` (``fit``).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import LstmTextError
from .langid import _bag, _cell, features

NAME = "multilingual"  # the built-in model's folder in ``pretrained``
FILE = "multilingual.safetensors"
ORDERS = (1, 2, 3, 4, 5)  # the character n-grams read
BITS = 21  # 2**BITS hash buckets (shared and per-language copies in one table)
CHARS = 512  # characters of a line read (after links and @mentions are dropped)
MIN_DF = 2  # a bucket seen in fewer training lines has no weight (TfidfVectorizer's min_df)

_NOISE = re.compile(r"https?://\S*|www\.\S*|@\w+|&\w+;|&#\d+;")  # links, @mentions, HTML entities


def text_of(text: str) -> str:
    """What the model reads of ``text``: links, @mentions and HTML entities dropped, whitespace collapsed,
    capitals lowered, the first ``CHARS`` characters."""
    text = text[: 4 * CHARS]
    if "@" in text or "&" in text or "http" in text or "www." in text:
        text = _NOISE.sub(" ", text)
    return " ".join(text.split())[:CHARS].lower()


def _salted(ids: np.ndarray, salt: np.ndarray, bits: int) -> np.ndarray:
    """The bucket of each n-gram's copy for a language: ``ids`` rehashed with the language's ``salt`` (both
    (M,) uint32); a 0 id (no n-gram) stays 0, and no copy lands in bucket 0."""
    x = (ids.astype(np.uint32) + np.uint32(1)) * np.uint32(0x9E3779B1) ^ salt
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x45D9F3B)
    x ^= x >> np.uint32(16)
    out = x >> np.uint32(32 - bits)
    out[out == 0] = 1
    out[ids == 0] = 0
    return out


def _salt(lang: str) -> int:
    """A language's salt: a hash of its code (crc32, stable across runs and machines)."""
    import zlib

    return zlib.crc32(lang.encode()) | 1


def bags(texts: list[str], salts: np.ndarray, bits: int, orders: tuple[int, ...] = ORDERS):
    """Each line's hashed n-grams for a bag sum (``_cell.bag``): (2T,) bucket ids, at each n-gram the shared
    bucket then its language's copy (0 where there is none: no n-gram, or a line without a language copy), and
    (N,) where each line's begin. ``texts`` as ``text_of`` gives them; ``salts`` (N,) uint32 (``salts``)."""
    ids, offsets = features(texts, orders, bits)  # (T,) shared buckets, (N,) each line's first
    salt = salts[np.repeat(np.arange(len(texts)), np.diff(np.append(offsets, len(ids))))]  # (T,)
    copy = _salted(ids, salt, bits).astype(np.int64)
    copy[salt == 0] = 0
    return np.stack([ids, copy], 1).reshape(-1), offsets * 2


@dataclass
class NgramClassifier:
    """A linear model over a line's hashed character n-grams, each n-gram weighted by its bucket's idf and the
    line's weights scaled to unit length (TF-IDF: a bucket's weight is its count times its idf): (2**bits, C)
    weights, the (2**bits,) idf of each bucket (0: too rare to weigh), (C,) bias and (L, C) a bias of each
    language's own; the labels, and the languages (langid's codes) that have a copy of every n-gram."""

    weight: np.ndarray  # (2**bits, C) float32
    idf: np.ndarray  # (2**bits,) float32
    bias: np.ndarray  # (C,) float32
    lang_bias: np.ndarray  # (L, C) float32
    labels: list[str]
    langs: list[str]
    orders: tuple[int, ...] = ORDERS
    bits: int = BITS
    facts: dict | None = None  # how it was made: data and their terms, dev figures (its card)

    def salts(self, langs: list[str]) -> np.ndarray:
        """(N,) uint32: each line's language salt, 0 for a language without weights of its own."""
        mine = set(self.langs)
        return np.array([_salt(v) if v in mine else 0 for v in langs], np.uint32)

    @functools.cached_property
    def _table(self) -> np.ndarray:
        """(2**bits, C + 1) float32: each bucket's weights times its idf, and its idf squared (one bag sum gives a
        line's scores and its squared length)."""
        return np.ascontiguousarray(np.concatenate([self.weight * self.idf[:, None], self.idf[:, None] ** 2], 1))

    def logits(self, texts: list[str], langs: list[str]) -> np.ndarray:
        """(N, C) scores of ``texts``, read as ``langs`` (one code per text): the compiled ``_cell.bag`` where the
        install built it, else NumPy (no torch, no scikit-learn: classify imports neither)."""
        n, C = len(texts), len(self.labels)
        if not n:
            return np.zeros((0, C), np.float32)
        ids, offsets = bags([text_of(t) for t in texts], self.salts(langs), self.bits, self.orders)
        s = np.empty((n, C + 1), np.float32)
        if _cell is not None:
            _bag(self._table, ids, offsets, s)
        else:  # every line has n-grams (its padding spaces), so no bag is empty
            rows = self._table[ids]  # (2T, C + 1) gathered: slower, same sums
            rows[ids == 0] = 0.0  # no n-gram
            s[:] = np.add.reduceat(rows, offsets)
        z = s[:, :C] / np.sqrt(np.maximum(s[:, C:], 1e-12)) + self.bias
        at = {v: k for k, v in enumerate(self.langs)}
        k = np.array([at.get(v, -1) for v in langs])
        z[k >= 0] += self.lang_bias[k[k >= 0]]
        return z

    def probs(self, texts: list[str], langs: list[str]) -> np.ndarray:
        """(N, C) probabilities of ``labels`` for each text, read as ``langs``."""
        z = self.logits(texts, langs)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save

        from .checkpoint import atomic_write

        meta = {"labels": self.labels, "langs": self.langs, "orders": list(self.orders), "bits": self.bits,
                "facts": self.facts or {}}  # fmt: skip
        tensors = {"weight": self.weight.astype(np.float16), "idf": self.idf.astype(np.float16), "bias": self.bias,
                   "lang_bias": self.lang_bias}  # fmt: skip
        atomic_write(Path(path), save(tensors, metadata={"ngram": json.dumps(meta)}))

    @classmethod
    def read(cls, path: str | Path) -> NgramClassifier:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "np") as f:
                meta = json.loads((f.metadata() or {})["ngram"])
                t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
            return cls(
                np.ascontiguousarray(t["weight"], np.float32), np.ascontiguousarray(t["idf"], np.float32),
                t["bias"].astype(np.float32), t["lang_bias"].astype(np.float32), meta["labels"], meta["langs"],
                tuple(meta["orders"]), meta["bits"], meta["facts"],
            )  # fmt: skip
        except (OSError, KeyError, ValueError, SafetensorError) as e:
            raise LstmTextError(f"{path} is not an n-gram classifier: {e}") from None


@functools.cache
def builtin(name: str = NAME) -> NgramClassifier:
    """A built-in n-gram model (``multilingual``), loaded on first use, once per process."""
    from .pretrained import HERE

    path = HERE / name / FILE
    if not path.is_file():
        raise LstmTextError(
            f"the built-in model {name!r} is not installed in this copy of lstm-text (run 'make pretrained' in a "
            "source checkout)"
        )
    return NgramClassifier.read(path)


def fit(
    texts: list[str],
    langs: list[str],
    labels: list[str],
    *,
    C: float = 4.0,
    bits: int = BITS,
    balance: bool = True,
    max_iter: int = 1000,
) -> NgramClassifier:
    """Fit an ``NgramClassifier`` to (text, language, label) triples: scikit-learn's ``LogisticRegression``
    (L2, inverse strength ``C``, lbfgs; ``balance``: classes weighted inversely to their frequency) on the TF-IDF
    weighted hashed n-grams, every language in ``langs`` with a copy of its own. Deterministic."""
    try:
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise LstmTextError("fitting an n-gram classifier needs scikit-learn: pip install 'lstm-text[bench]'") from None
    if not texts or not len(texts) == len(langs) == len(labels):
        raise LstmTextError("{texts}, langs and labels must be non-empty lists of one length", param="texts")
    n, classes = len(texts), sorted(set(labels))
    if len(classes) < 2:
        raise LstmTextError(f"{{labels}} must hold at least two classes, got {classes}", param="labels")
    order = sorted(set(langs))
    m = NgramClassifier(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), classes, order, ORDERS, bits)
    ids, offsets = bags([text_of(t) for t in texts], m.salts(langs), bits)
    line = np.repeat(np.arange(n), np.diff(np.append(offsets, len(ids))))
    line, ids = line[ids != 0], ids[ids != 0]
    df = np.bincount(np.unique((line << bits) | ids) & ((1 << bits) - 1), minlength=2**bits)  # lines with each
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    idf[df < MIN_DF] = 0.0
    val = idf[ids]
    val /= np.maximum(np.sqrt(np.bincount(line, val * val, minlength=n)), 1e-12)[line]
    at = {v: k for k, v in enumerate(order)}
    own = np.array([at[v] for v in langs]) + 2**bits  # each language's own bias: a feature of value 1
    X = csr_matrix(
        (
            np.concatenate([val, np.ones(n, np.float32)]),
            (np.concatenate([line, np.arange(n)]), np.concatenate([ids, own])),
        ),
        shape=(n, 2**bits + len(order)),
    )  # a bucket met twice in a line: its two entries add up
    clf = LogisticRegression(C=C, max_iter=max_iter, class_weight="balanced" if balance else None)
    clf.fit(X, np.array(labels))
    coef, icpt = clf.coef_, clf.intercept_
    if len(classes) == 2:  # scikit-learn's binary form: one score for the second class
        coef, icpt = np.stack([-coef[0] / 2, coef[0] / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    m.weight = np.ascontiguousarray(coef[:, : 2**bits].T, np.float32)
    m.lang_bias = np.ascontiguousarray(coef[:, 2**bits :].T, np.float32)
    m.idf, m.bias = idf, icpt.astype(np.float32)
    return m


def card(m: NgramClassifier) -> str:
    """The model card of a built-in n-gram model (``card.render``): what it is, its data and their terms
    (``pretrained.CARDS``), its dev figures per folder (``m.facts``)."""
    from .card import render
    from .pretrained import CARDS

    f = m.facts or {}
    results = [
        {"dataset": f"multilingual/{folder} dev", "split": "dev", "metric": "f1", "name": "dev macro-F1",
         "value": r["macro_f1"]}
        for folder, r in f.get("dev", {}).items()
    ]  # fmt: skip
    lo, hi = min(m.orders), max(m.orders)
    return render(
        {
            "name": NAME,
            "task": "text-classification",
            "results": results,
            "summary": f"A linear model (logistic regression) over the TF-IDF weighted character {lo}-{hi}-grams "
            f"of a line (lower-cased, links and @mentions dropped, its first {CHARS} characters), hashed into "
            f"{2**m.bits:,} buckets, with a copy of every n-gram for each of its {len(m.langs)} languages (the "
            f"line's language as langid names it); labels {', '.join(m.labels)}. Fitted by lstm_text.ngram.fit "
            "(scikit-learn's LogisticRegression).",
            "training": {"train_examples": f.get("train_lines"), "wall_seconds": f.get("fit_seconds"),
                         "config": {"C": f.get("C"), "bits": m.bits, "class_weight": "balanced"}},
            "config": {"orders": list(m.orders), "bits": m.bits, "chars": CHARS, "labels": m.labels,
                       "languages": m.langs},
            "tokenizer": f"character {lo}-{hi}-grams hashed into {2**m.bits:,} buckets",
            "usage": 'echo "Das Essen war ausgezeichnet!" | lstm-text classify --model sentiment3',
            "files": [f"`{FILE}` holds the weights, the idf of each bucket and the languages (safetensors)."],
        }
        | CARDS[NAME]
    )  # fmt: skip

"""Sentiment in the languages the English built-ins do not read: ``NgramClassifier``, one linear model per
language over the TF-IDF weighted, hashed character 1-5-grams of a line, the languages' weights in one table
(each language its own rows, sized to its data), the line's language as langid names it.

The built-in ``multilingual`` model is one of these, fitted on the 28 folders of ``../shared/data/multilingual``
and on English tweets, Reddit comments, SST-5 and objective sentences (``benchmarks/multilingual_fit.py``);
``sentiment`` and ``sentiment3`` hand it the lines langid finds in one of its languages, and ``sentiment3`` reads
English with its LSTM and this model together (``Companion``, ``Model.classify``).

Why not an LSTM: a multilingual BiLSTM over the same data (unigram SentencePiece, 96 units) reached a mean dev
macro-F1 of 0.589 across the folders, below a character TF-IDF + logistic regression trained per folder (0.638),
in 78 minutes of training; a linear model over character n-grams is the strong baseline for short texts in
languages with little data, and this one is fitted in minutes and reads tens of thousands of lines/s on one core
(benchmarks/README.md, "Sentiment in other languages"). The features are computed here, not by scikit-learn's
vectorizers: classify must not import scikit-learn (nor torch), and hashing keeps the model a fixed size.
Fitting is scikit-learn's ``LogisticRegression`` (``fit``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import LstmTextError
from .langid import _bag, _cell, features

NAME = "multilingual"  # the built-in model's folder in ``pretrained``
FILE = "multilingual.safetensors"
ORDERS = (1, 2, 3, 4, 5)  # the character n-grams read
CHARS = 512  # characters of a line read (after links and @mentions are dropped)
MIN_DF = 2  # an n-gram in fewer of a language's training lines has no weight (TfidfVectorizer's min_df)
MIN_BITS, MAX_BITS = 16, 21  # a language's rows: 2**bits, bits = log2(its training lines) + 4 within these
IDF_STEP = 1 / 16  # a stored idf is a multiple of this in a uint8 (idf is 1 to log(lines) + 1; 0: no weight)
NEVER = -30.0  # the bias of a label a language's data does not hold (Korean and Chinese have no neutral)

_NOISE = re.compile(r"https?://\S*|www\.\S*|@\w+|&\w+;|&#\d+;")  # links, @mentions, HTML entities


def text_of(text: str) -> str:
    """What the model reads of ``text``: links, @mentions and HTML entities dropped, whitespace collapsed,
    capitals lowered, the first ``CHARS`` characters."""
    text = text[: 4 * CHARS]
    if "@" in text or "&" in text or "http" in text or "www." in text:
        text = _NOISE.sub(" ", text)
    return " ".join(text.split())[:CHARS].lower()


def _salt(lang: str) -> int:
    """A language's salt: a hash of its code (crc32, stable across runs and machines)."""
    import zlib

    return zlib.crc32(lang.encode()) | 1


def bits_for(lines: int) -> int:
    """The size of a language's part of the table (2**bits rows) for its number of training lines."""
    return int(np.clip(round(np.log2(max(lines, 1))) + 4, MIN_BITS, MAX_BITS))


def bags(texts: list[str], which: np.ndarray, salts: np.ndarray, starts: np.ndarray, bits: np.ndarray,
         orders: tuple[int, ...] = ORDERS) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each line's hashed n-grams for a bag sum (``_cell.bag``): (T,) rows of the table, 0 where there is no
    n-gram (or the line's language has no rows), and (N,) where each line's begin. ``texts`` as ``text_of``
    gives them; ``which`` (N,) each line's language (an index into ``salts``, ``starts``, ``bits``; -1: none).
    Language k's rows are ``starts[k] + 1 + [0, 2**bits[k])``: an n-gram's 32-bit hash, salted with the
    language's, cut to its top ``bits[k]`` bits."""
    h, offsets = features(texts, orders, 32)  # (T,) 32-bit hashes, 0: no n-gram
    k = which[np.repeat(np.arange(len(texts)), np.diff(np.append(offsets, len(h))))]  # (T,)
    x = (h.astype(np.uint32) + np.uint32(1)) * np.uint32(0x9E3779B1) ^ salts[k].astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x45D9F3B)
    x ^= x >> np.uint32(16)
    ids = starts[k] + 1 + (x >> (32 - bits[k]).astype(np.uint32)).astype(np.int64)
    ids[(h == 0) | (k < 0)] = 0
    return ids, offsets


@dataclass
class NgramClassifier:
    """One linear model per language over a line's hashed character n-grams, each n-gram weighted by its idf and
    the line's weights scaled to unit length (TF-IDF: an n-gram met twice counts twice): (R, C) weights and (R,)
    idf (0: too rare to weigh) in one table, language k's rows from ``starts[k] + 1``, 2**``bits[k]`` of them
    (row 0: no n-gram); (L, C) each language's bias; the labels and the languages (langid's codes).

    As ``fit`` makes it and a file holds it, it is quantized (``quantized``): int8 weights, row r of language k
    standing for ``weight[r] * scale[k]``, and uint8 idf in steps of ``idf_step``: half the bytes of float16, so
    each language gets twice the rows (fewer hash collisions) in the same file."""

    weight: np.ndarray  # (R, C) int8 (quantized; any float dtype when ``scale`` is None)
    idf: np.ndarray  # (R,) uint8 (quantized: idf / idf_step; any float dtype when idf_step is 1)
    bias: np.ndarray  # (L, C) float32
    labels: list[str]
    langs: list[str]
    bits: list[int]  # (L,) each language's part of the table: 2**bits rows
    orders: tuple[int, ...] = ORDERS
    facts: dict | None = None  # how it was made: data and their terms, dev figures (its card)
    scale: np.ndarray | None = None  # (L, C) float32: each language's weight per int8 step; None: not quantized
    idf_step: float = 1.0  # the idf per unit of ``idf``

    @functools.cached_property
    def starts(self) -> np.ndarray:
        """(L,) int64: where each language's rows begin (after row 0)."""
        return np.concatenate([[0], np.cumsum([2**b for b in self.bits])[:-1]]).astype(np.int64)

    def which(self, langs: list[str]) -> np.ndarray:
        """(N,) each line's language as an index into ``langs``, -1 for a language the model does not read."""
        at = {v: k for k, v in enumerate(self.langs)}
        return np.array([at.get(v, -1) for v in langs], np.int64)

    @functools.cached_property
    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(L + 1,) each language's salt, rows' start and bits for ``bags``; the last: the "none" language (-1)."""
        salts = np.array([_salt(v) for v in self.langs] + [0], np.uint32)
        return salts, np.append(self.starts, 0), np.array(self.bits + [32], np.int64)

    def rows(self, texts: list[str], langs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``bags`` of ``texts`` (raw lines) read as ``langs``."""
        return self._rows(texts, self.which(langs))

    def _rows(self, texts: list[str], which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        salts, starts, bits = self._layout
        return bags([text_of(t) for t in texts], which, salts, starts, bits, self.orders)

    @functools.cached_property
    def _table(self) -> np.ndarray:
        """(R, C + 1) float32: each row's weights times its idf, and its idf squared (one bag sum gives a line's
        scores and its squared length). Each language's rows are filled when a line in it is first read
        (``_ready``): a process that reads English only never builds (nor holds in memory) Korean's."""
        table = np.empty((len(self.idf), len(self.labels) + 1), np.float32)  # pages untouched until filled
        table[0] = 0.0  # no n-gram
        return table

    @functools.cached_property
    def _filled(self) -> np.ndarray:
        """(L,) bool: the languages whose rows ``_table`` holds."""
        return np.zeros(len(self.langs), bool)

    def _span(self, k: int) -> slice:
        """Language k's rows of the table."""
        return slice(self.starts[k] + 1, self.starts[k] + 1 + 2 ** self.bits[k])

    def _ready(self, which: np.ndarray) -> np.ndarray:
        """``_table``, with the rows of every language in ``which`` (indices; -1: none) filled."""
        table, C = self._table, len(self.labels)
        for k in np.unique(which[which >= 0]):
            if self._filled[k]:
                continue
            rows = self._span(k)
            idf = self.idf[rows].astype(np.float32) * np.float32(self.idf_step)  # (n,)
            w = self.weight[rows].astype(np.float32)  # (n, C)
            if self.scale is not None:
                w *= self.scale[k]
            np.multiply(w, idf[:, None], out=table[rows, :C])
            np.multiply(idf, idf, out=table[rows, C])
            self._filled[k] = True  # set last: another thread that sees it finds the rows written
        return table

    def quantized(self) -> NgramClassifier:
        """This model with int8 weights (one step per language and label: its largest weight / 127) and uint8
        idf (steps of ``IDF_STEP``), as a file holds it; itself when it already is."""
        if self.scale is not None:
            return self
        weight = np.zeros(self.weight.shape, np.int8)
        scale = np.ones((len(self.langs), len(self.labels)), np.float32)
        for k in range(len(self.langs)):
            rows = self._span(k)
            w = self.weight[rows].astype(np.float32)
            top = np.abs(w).max(0)  # (C,)
            scale[k] = np.where(top > 0, top / 127, 1.0)
            weight[rows] = np.round(w / scale[k]).astype(np.int8)
        idf = np.clip(np.round(self.idf.astype(np.float32) * self.idf_step / IDF_STEP), 0, 255).astype(np.uint8)
        return NgramClassifier(weight, idf, self.bias, self.labels, self.langs, self.bits, self.orders, self.facts,
                               scale, IDF_STEP)  # fmt: skip

    def logits(self, texts: list[str], langs: list[str]) -> np.ndarray:
        """(N, C) scores of ``texts`` read as ``langs`` (one code per text; a language the model does not read
        scores 0 for every label): the compiled ``_cell.bag`` where the install built it, else NumPy (no torch,
        no scikit-learn: classify imports neither)."""
        n, C = len(texts), len(self.labels)
        if not n:
            return np.zeros((0, C), np.float32)
        k = self.which(langs)
        ids, offsets = self._rows(texts, k)
        table = self._ready(k)
        s = np.empty((n, C + 1), np.float32)
        if _cell is not None:
            _bag(table, ids, offsets, s)
        else:  # every line has n-grams (its padding spaces), so no bag is empty
            rows = table[ids]  # (T, C + 1) gathered: slower, same sums
            rows[ids == 0] = 0.0  # no n-gram
            s[:] = np.add.reduceat(rows, offsets)
        z = s[:, :C] / np.sqrt(np.maximum(s[:, C:], 1e-12))
        z[k >= 0] += self.bias[k[k >= 0]]
        return z

    def probs(self, texts: list[str], langs: list[str]) -> np.ndarray:
        """(N, C) probabilities of ``labels`` for each text, read as ``langs``."""
        from .infer.classifier import softmax

        return softmax(self.logits(texts, langs))

    def save(self, path: str | Path) -> None:
        """Write the model (``quantized``) to ``path``, atomically."""
        from .checkpoint import save_arrays

        q = self.quantized()
        meta = {"labels": q.labels, "langs": q.langs, "bits": q.bits, "orders": list(q.orders), "idf_step": q.idf_step,
                "facts": q.facts or {}}  # fmt: skip
        tensors = {"weight": q.weight, "scale": q.scale, "idf": q.idf, "bias": q.bias.astype(np.float32)}
        save_arrays(path, "ngram", meta, tensors)

    @classmethod
    def read(cls, path: str | Path) -> NgramClassifier:
        from .checkpoint import read_arrays

        meta, t = read_arrays(path, "ngram", "an n-gram classifier")
        try:
            return cls(
                t["weight"], t["idf"], t["bias"], meta["labels"], meta["langs"], meta["bits"], tuple(meta["orders"]),
                meta["facts"], t["scale"], meta["idf_step"],
            )  # fmt: skip
        except KeyError as e:
            raise LstmTextError(f"{path} is not an n-gram classifier: {e}") from None


@dataclass(frozen=True)
class Companion:
    """An ``NgramClassifier`` as it answers for another model (a built-in's ``multilingual``): it reads alone the
    lines in its languages that the other does not read (``langs``), and in the languages both read its
    log-probabilities join the other's with weight ``mix`` (a product of experts: p ~ p_other**(1 - mix) *
    p_ngram**mix; 0: it leaves those lines to the other). ``infer.classifier.read_probs`` does both."""

    model: NgramClassifier = field(repr=False)
    own: tuple[str, ...] = ()  # the other model's languages
    mix: float = 0.0

    @property
    def langs(self) -> list[str]:
        """The languages it reads alone: its own less the other model's."""
        return [v for v in self.model.langs if v not in self.own]

    @property
    def shared(self) -> list[str]:
        """The languages whose lines it reads with the other model (none when ``mix`` is 0)."""
        return [v for v in self.model.langs if v in self.own] if self.mix else []

    def probs(self, texts: list[str], langs: list[str], labels: list[str]) -> np.ndarray:
        """(N, C) its probabilities over the other model's ``labels`` (a binary model's negative and positive,
        renormalised) for ``texts`` read as ``langs``."""
        q = self.model.probs(texts, langs)[:, [self.model.labels.index(c) for c in labels]]
        return q / q.sum(1, keepdims=True)

    def join(self, p: np.ndarray, texts: list[str], langs: list[str], labels: list[str]) -> np.ndarray:
        """(N, C) the other model's probabilities ``p`` over ``labels`` for ``texts``, joined with its own on the
        lines whose language is ``shared``: softmax((1 - mix) log p + mix log q)."""
        from .infer.classifier import softmax

        shared = set(self.shared)
        both = [k for k, v in enumerate(langs) if v in shared]
        if not both:
            return p
        q = self.probs([texts[k] for k in both], [langs[k] for k in both], labels)
        p = p.copy()
        z = (1.0 - self.mix) * np.log(np.maximum(p[both], 1e-12)) + self.mix * np.log(np.maximum(q, 1e-12))  # (M, C)
        p[both] = softmax(z)
        return p


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
    bits: dict[str, int] | None = None,
    balance: bool = True,
    max_iter: int = 1000,
) -> NgramClassifier:
    """Fit an ``NgramClassifier`` to (text, language, label) triples: per language, scikit-learn's
    ``LogisticRegression`` (L2, inverse strength ``C``, lbfgs; ``balance``: classes weighted inversely to their
    frequency in that language) on its lines' TF-IDF weighted hashed n-grams. ``bits``: a language's part of the
    table (default ``bits_for`` its number of lines). A label a language's lines lack gets the bias ``NEVER``
    there. The model comes back ``quantized``, as it will be saved and read. Deterministic."""
    if not texts or not len(texts) == len(langs) == len(labels):
        raise LstmTextError("{texts}, langs and labels must be non-empty lists of one length", param="texts")
    classes, order = sorted(set(labels)), sorted(set(langs))
    if len(classes) < 2:
        raise LstmTextError(f"{{labels}} must hold at least two classes, got {classes}", param="labels")
    try:
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise LstmTextError("fitting an n-gram classifier needs scikit-learn: pip install 'lstm-text[bench]'") from None
    y, lang = np.array(labels), np.array(langs)
    sizes = [(bits or {}).get(v) or bits_for(int((lang == v).sum())) for v in order]
    m = NgramClassifier(np.zeros(0), np.zeros(0), np.zeros(0), classes, order, sizes)
    R = 1 + sum(2**b for b in sizes)
    weight, idf = np.zeros((R, len(classes)), np.float32), np.zeros(R, np.float32)
    bias = np.full((len(order), len(classes)), NEVER, np.float32)
    for k, v in enumerate(order):
        mine = np.flatnonzero(lang == v)
        n = len(mine)
        ids, offsets = m.rows([texts[i] for i in mine], [v] * n)
        line = np.repeat(np.arange(n), np.diff(np.append(offsets, len(ids))))
        line, ids = line[ids != 0], ids[ids != 0]
        used, df = np.unique(np.unique((line << 32) | ids) & ((1 << 32) - 1), return_counts=True)  # lines with each
        keep = df >= MIN_DF
        used, w = used[keep], (np.log((1.0 + n) / (1.0 + df[keep])) + 1.0).astype(np.float32)
        col = np.searchsorted(used, ids)
        ok = (col < len(used)) & (used[np.minimum(col, len(used) - 1)] == ids)  # n-grams with a weight
        line, col = line[ok], col[ok]
        val = w[col]
        val /= np.maximum(np.sqrt(np.bincount(line, val * val, minlength=n)), 1e-12)[line]
        X = csr_matrix((val, (line, col)), shape=(n, len(used)))  # an n-gram met twice in a line: its entries add
        have = sorted(set(y[mine]))
        if len(have) < 2:
            raise LstmTextError(f"the lines in {v!r} hold one label only ({have[0]})", param="labels")
        clf = LogisticRegression(C=C, max_iter=max_iter, class_weight="balanced" if balance else None)
        clf.fit(X, y[mine])
        coef, icpt = clf.coef_, clf.intercept_
        if len(have) == 2:  # scikit-learn's binary form: one score for the second class
            coef, icpt = np.stack([-coef[0] / 2, coef[0] / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
        cols = [classes.index(c) for c in have]
        weight[np.ix_(used, cols)] = coef.T
        idf[used] = w
        bias[k, cols] = icpt
    m.weight, m.idf, m.bias = weight, idf, bias
    return m.quantized()


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
    ] + [
        {"dataset": f"{name} dev (English, alone: sentiment3 reads English with it and its LSTM)", "split": "dev",
         "metric": "f1", "name": "dev macro-F1", "value": r["macro_f1"]}
        for name, r in f.get("english_dev", {}).items()
    ]  # fmt: skip
    lo, hi = min(m.orders), max(m.orders)
    return render(
        {
            "name": NAME,
            "task": "text-classification",
            "results": results,
            "summary": f"One logistic regression per language over the TF-IDF weighted character {lo}-{hi}-grams "
            f"of a line (lower-cased, links and @mentions dropped, its first {CHARS} characters), hashed into "
            f"2**{min(m.bits)} to 2**{max(m.bits)} rows a language ({len(m.weight):,} in all; int8 weights, uint8 "
            f"idf), for "
            f"{len(m.langs)} languages (the line's language as langid names it); labels {', '.join(m.labels)}. "
            "Fitted by lstm_text.ngram.fit (scikit-learn's LogisticRegression).",
            "training": {"train_examples": f.get("train_lines"), "wall_seconds": f.get("fit_seconds"),
                         "config": {"C": f.get("C"), "class_weight": "balanced", "max_iter": f.get("max_iter")}},
            "config": {"orders": list(m.orders), "chars": CHARS, "labels": m.labels,
                       "bits": dict(zip(m.langs, m.bits))},
            "tokenizer": f"character {lo}-{hi}-grams hashed into each language's rows",
            "usage": 'echo "Das Essen war ausgezeichnet!" | lstm-text classify --model sentiment3',
            "files": [f"`{FILE}` holds the weights, the idf of each bucket and the languages (safetensors)."],
        }
        | CARDS[NAME]
    )  # fmt: skip

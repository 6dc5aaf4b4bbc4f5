"""Language identification: the built-in ``langid`` model (hashed character n-grams, a linear layer, NumPy and
torch inference), loaded once per process, and ``Gate``: each line's language and whether a model reads it
(``Model.classify``'s "lang").

langid is not an LSTM. A language is told by its characters and their short runs, which a linear model over
hashed character 1-4-grams reads in one lookup each (the approach of langid.py, CLD3 and fastText's lid models):
on langid's dev set it names 96% of lines right where a 32-unit character LSTM named 90%, in about a fifth of
the time (benchmarks/README.md, "Language ID"), and classify's speed is a target. It is written here, not taken
from a library: fastText's and langid.py's published models do not know half of these languages, and fitting
one is 40 lines of NumPy and torch (``fit``), with no dependency the rest of lstm-text lacks.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import LstmTextError

try:
    from .infer import _cell
except ImportError:  # built at install where a C compiler is there
    _cell = None  # type: ignore[assignment]

NAME = "langid"  # the built-in model's folder in ``pretrained``
FILE = "langid.safetensors"
PREFIX = 64  # characters of a line langid reads (whitespace collapsed): benchmarks/README.md, "Language ID"
ORDERS = (1, 2, 3, 4)  # the character n-grams langid reads
BITS = 16  # 2**BITS hash buckets
# A line is refused when langid gives at least this probability to languages the model does not read; chosen on
# langid's dev set and the English dev sets (benchmarks/README.md, "Language ID").
THRESHOLD = 0.95
# A line of fewer letters is refused only when langid is nearly sure (its script decides it: a short Korean line
# is Korean, a short Latin-script line could be many languages): most English lines it misnames are that short.
MIN_LETTERS, SURE = 16, 0.999
UNKNOWN = "unknown"  # a line whose letters are mostly characters langid never saw: a script it does not know
NO_TEXT = "zxx"  # ISO 639-2 "no linguistic content": a blank line, or one without letters (emoji, numbers)
# A model that reads English reads Nigerian Pidgin too (an English-based creole written in English spelling):
# langid takes lower-case English for Pidgin, and the English built-ins score Pidgin tweets as well as a
# classifier trained on them does (benchmarks/README.md, "Sentiment in other languages").
ALSO_READ = {"en": ("pcm",)}

_NOISE = re.compile(r"https?(?::\S*)?|www\.\S*|@\w+|&\w+;|&#\d+;")  # links, @mentions, HTML entities: no language
_MIX = np.uint32(0x9E3779B9)  # Fibonacci hashing: the top BITS bits of x * 2**32 / phi spread well


def head_of(text: str) -> str:
    """What langid reads of ``text`` (and is trained on: benchmarks/langid_data.py): its first ``PREFIX``
    characters once links, @mentions and HTML entities are dropped, whitespace is collapsed and capitals are
    lowered. A tweet's prefix is often "@user @user http://t.co/..."; those say nothing of its language, and an
    English headline's capitals made it German."""
    text = text[: 4 * PREFIX]
    if "@" in text or "&" in text or "http" in text or "www." in text:  # most lines have none of these
        text = _NOISE.sub(" ", text)
    return " ".join(text.split())[:PREFIX].lower()


def _codes(heads: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(C,) code points of the heads, each padded with a space on both sides and ended by a 0, and (N,) where
    each head's padding starts."""
    s = "\0 " + " \0 ".join(heads) + " \0"
    if s.count("\0") != len(heads) + 1:  # a NUL inside a line is read as a space
        s = "\0 " + " \0 ".join(h.replace("\0", " ") for h in heads) + " \0"
    c = np.frombuffer(s.encode("utf-32-le"), np.uint32)
    return c, np.flatnonzero(c == 0)[:-1]


def features(heads: list[str], orders: tuple[int, ...] = ORDERS, bits: int = BITS) -> tuple[np.ndarray, np.ndarray]:
    """The hashed character n-grams of each head, for ``torch.nn.functional.embedding_bag``: (C * O,) int64
    bucket ids, line after line (``O = len(orders)`` at each character), and (N,) each line's first. A head is
    read with a space on each side, so a word's first and last letters make n-grams of their own; bucket 0 is
    no n-gram (one that would cross two lines; its weights stay 0). All lines at once, in NumPy."""
    c, starts = _codes(heads)
    sep = c == 0
    h, bad = np.zeros(len(c), np.uint32), np.zeros(len(c), bool)
    ids = np.zeros((len(c), len(orders)), np.int64)  # (C, O): the n-grams starting at each character, in order
    for n in range(1, max(orders) + 1):
        m = len(c) - n + 1
        h = h[:m] * np.uint32(1000003) + c[n - 1 : n - 1 + m]  # the n-gram starting at each character (mod 2**32)
        bad = bad[:m] | sep[n - 1 : n - 1 + m]
        if n in orders:
            bucket = ((h ^ (h >> np.uint32(15))) * _MIX) >> np.uint32(32 - bits)
            bucket[bad] = 0
            ids[:m, orders.index(n)] = bucket
    return ids.reshape(-1), starts * len(orders)


def _bag(weight, ids, offsets, out) -> None:  # untyped: NumPy's stubs do not call an ndarray a Buffer
    assert _cell is not None
    _cell.bag(weight, ids, offsets, out)


def script_of(char: str) -> str:
    """A letter's script, as the first word of its Unicode name (LATIN, HANGUL, CJK, ARABIC, ETHIOPIC, ...)."""
    import unicodedata

    return unicodedata.name(char, "UNKNOWN").split()[0]


@dataclass
class Langid:
    """A linear model over hashed character n-grams: (2**bits, L) weights, (L,) bias, the languages (ISO 639
    codes), the characters it saw in training with each letter's script, and the scripts each language writes.

    A language is a candidate for a line only if it writes a script that makes up at least ``MIX`` of the line's
    letters: a Latin-script line is never Korean, whatever words Korean reviews borrow from English."""

    weight: np.ndarray  # (2**bits, L) float32
    bias: np.ndarray  # (L,) float32
    labels: list[str]
    known: np.ndarray  # (K,) sorted uint32 code points
    scripts: np.ndarray  # (K,) uint8: each known character's index in script_names, NOT_A_LETTER for the others
    script_names: list[str]
    writes: np.ndarray  # (L, S) bool: the scripts each language writes (WRITES of its letters or more)
    orders: tuple[int, ...] = ORDERS
    bits: int = BITS
    facts: dict | None = None  # how it was made: data, dev figures (its card)

    NOT_A_LETTER, UNSEEN = 255, 254
    MIX, WRITES = 0.3, 0.2  # a script of a line: this share of its letters; of a language: this share of its own

    @functools.cached_property
    def _table(self) -> np.ndarray:
        """(65536,) uint8: the script of each code point of the Basic Multilingual Plane (``scripts``; UNSEEN for
        a letter langid never saw), built once, so a line's letters are one lookup."""
        alpha = np.array([chr(u).isalpha() for u in range(0x10000)], bool)
        table = np.where(alpha, self.UNSEEN, self.NOT_A_LETTER).astype(np.uint8)
        bmp = self.known < 0x10000
        table[self.known[bmp]] = self.scripts[bmp]
        return table

    def letters(self, heads: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,) letters in each head, (N,) of those, letters langid saw, and (N, S) their share by script."""
        c, starts = _codes(heads)
        script = self._table[np.minimum(c, 0xFFFF)]  # (C,)
        high = np.flatnonzero(c > 0xFFFF)  # emoji and rarer characters: looked up one by one
        if len(high):
            at = np.minimum(np.searchsorted(self.known, c[high]), len(self.known) - 1)
            alpha = np.array([chr(u).isalpha() for u in c[high].tolist()], bool)
            seen = np.where(self.known[at] == c[high], self.scripts[at], self.UNSEEN)
            script[high] = np.where(alpha, seen, self.NOT_A_LETTER)
        S, N = len(self.script_names), len(heads)
        line = np.repeat(np.arange(N), np.diff(np.append(starts, len(c))))  # (C,) each character's line
        col = np.where(script < S, script, np.where(script == self.UNSEEN, S, S + 1))  # S: unseen, S + 1: no letter
        counts = np.bincount(line * (S + 2) + col, minlength=N * (S + 2)).reshape(N, S + 2)
        seen = counts[:, :S].sum(1)
        letters = seen + counts[:, S]
        return letters, seen, counts[:, :S] / np.maximum(letters, 1)[:, None]

    def candidates(self, shares: np.ndarray) -> np.ndarray:
        """(N, L) bool: the languages that write a script of each line (a script of at least ``MIX`` of its
        letters); every language for a line without one."""
        ok = (shares >= self.MIX).astype(np.int64) @ self.writes.T.astype(np.int64) > 0  # (N, L)
        ok[~ok.any(1)] = True
        return ok

    def logits(self, heads: list[str]) -> np.ndarray:
        """(N, L) scores of each head (``head_of``): the compiled ``_cell.bag`` where the install built it, else
        NumPy (no torch: classify never imports it)."""
        ids, offsets = features(heads, self.orders, self.bits)
        out = np.empty((len(heads), len(self.labels)), np.float32)
        if _cell is not None and len(heads):
            _bag(self.weight, ids, offsets, out)
        elif len(heads):
            out[:] = np.add.reduceat(self.weight[ids], offsets)  # (C * O, L) gathered: slower, same sums
        return out + self.bias

    def probs(self, heads: list[str], shares: np.ndarray | None = None) -> np.ndarray:
        """(N, L) probabilities over ``labels``, 0 for the languages that do not write the line's scripts
        (``candidates``; ``shares``: ``letters``' third, computed when not given)."""
        if shares is None:
            shares = self.letters(heads)[2]
        z = self.logits(heads)
        z = np.where(self.candidates(shares), z, -np.inf)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def save(self, path: str | Path) -> None:
        from .checkpoint import save_arrays

        meta = {"labels": self.labels, "orders": list(self.orders), "bits": self.bits,
                "script_names": self.script_names, "facts": self.facts or {}}  # fmt: skip
        tensors = {"weight": self.weight.astype(np.float16), "bias": self.bias, "known": self.known,
                   "scripts": self.scripts, "writes": self.writes}  # fmt: skip
        save_arrays(path, "langid", meta, tensors)

    @classmethod
    def read(cls, path: str | Path) -> Langid:
        from .checkpoint import read_arrays

        meta, t = read_arrays(path, "langid", "a langid model")
        try:
            return cls(
                np.ascontiguousarray(t["weight"], np.float32), t["bias"], meta["labels"], t["known"], t["scripts"],
                meta["script_names"], t["writes"], tuple(meta["orders"]), meta["bits"], meta["facts"],
            )  # fmt: skip
        except KeyError as e:
            raise LstmTextError(f"{path} is not a langid model: {e}") from None


def fit(
    heads: list[str],
    langs: list[str],
    *,
    epochs: int = 3,
    lr: float = 0.02,
    batch_size: int = 256,
    min_count: int = 2,
    seed: int = 0,
) -> Langid:
    """Fit a ``Langid`` to (head, language) pairs: softmax regression on the hashed n-grams (Adam, its rate
    falling linearly to 0, ``epochs`` passes in a seeded order). Characters seen at least ``min_count`` times
    are its known ones; a language writes the scripts of at least ``Langid.WRITES`` of its letters."""
    import torch

    if not heads or len(heads) != len(langs):
        raise LstmTextError("{heads} must be a non-empty list as long as {langs}", param="heads")
    labels = sorted(set(langs))
    y = torch.tensor([labels.index(v) for v in langs])
    ids, offsets = features(heads)
    bounds = np.append(offsets, len(ids))
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    emb = torch.nn.EmbeddingBag(2**BITS, len(labels), mode="sum", padding_idx=0)
    torch.nn.init.zeros_(emb.weight)
    bias = torch.nn.Parameter(torch.zeros(len(labels)))
    opt = torch.optim.Adam([emb.weight, bias], lr=lr)
    steps = epochs * -(-len(heads) // batch_size)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 - k / steps)  # to 0: the last batches settle it
    for _ in range(epochs):
        for b in torch.randperm(len(heads), generator=g).split(batch_size):
            rows = [ids[bounds[i] : bounds[i + 1]] for i in b.tolist()]
            starts = np.cumsum([0] + [len(r) for r in rows[:-1]])
            out = emb(torch.from_numpy(np.concatenate(rows)), torch.from_numpy(starts)) + bias  # (B, L)
            loss = torch.nn.functional.cross_entropy(out, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            decay.step()
    # the characters seen, each letter's script, and the scripts each language writes
    c, _ = _codes(heads)
    codes, counts = np.unique(c[c != 0], return_counts=True)
    known = codes[counts >= min_count]
    chars = [chr(k) for k in known.tolist()]
    names = sorted({script_of(ch) for ch in chars if ch.isalpha()})
    if len(names) >= Langid.UNSEEN:
        raise LstmTextError(f"langid tells at most {Langid.UNSEEN - 1} scripts apart, got {len(names)}", param="heads")
    scripts = np.array([names.index(script_of(ch)) if ch.isalpha() else Langid.NOT_A_LETTER for ch in chars], np.uint8)
    writes = np.zeros((len(labels), len(names)), bool)
    for i, lang in enumerate(labels):
        mine = Counter(script_of(ch) for h, v in zip(heads, langs) if v == lang for ch in h if ch.isalpha())
        total = sum(mine.values()) or 1
        writes[i] = [mine[name] / total >= Langid.WRITES for name in names]
    weight = emb.weight.detach().numpy().copy()
    return Langid(weight, bias.detach().numpy().copy(), labels, known.astype(np.uint32), scripts, names, writes)


def card(m: Langid) -> str:
    """The model card of a langid model (``card.render``): what it is, its data and their terms
    (``pretrained.CARDS``), its dev figures (``m.facts``)."""
    from .card import render
    from .pretrained import CARDS

    f = m.facts or {}
    dev = [("accuracy", "dev accuracy", "dev_accuracy"), ("f1", "dev macro-F1", "dev_macro_f1")]
    results = [
        {"dataset": "langid_data.py dev lines", "split": "dev", "metric": k, "name": n, "value": f[key]}
        for k, n, key in dev
        if key in f
    ]
    config = {"orders": list(m.orders), "bits": m.bits, "prefix": PREFIX, "labels": m.labels}
    return render(
        {
            "name": NAME,
            "task": "text-classification",
            "results": results,
            "summary": f"A linear model over the hashed character {min(m.orders)}-{max(m.orders)}-grams of a "
            f"line's first {PREFIX} characters (lower-cased, links and @mentions dropped), {2**m.bits:,} buckets, "
            f"telling {len(m.labels)} languages apart; fitted by lstm_text.langid.fit.",
            "training": {"train_examples": f.get("train_lines"), "epochs": f.get("epochs"),
                         "wall_seconds": f.get("fit_seconds"), "config": {"seed": f.get("seed")}},
            "config": config,
            "tokenizer": f"character {min(m.orders)}-{max(m.orders)}-grams hashed into {2**m.bits:,} buckets",
            "usage": 'echo "Das Essen war ausgezeichnet." | lstm-text classify --lang',
            "files": [f"`{FILE}` holds the weights, the languages and the characters each uses (safetensors)."],
        }
        | CARDS[NAME]
    )  # fmt: skip


@functools.cache
def _langid() -> Langid:
    """The built-in ``langid`` model, loaded on first use, once per process."""
    from .pretrained import HERE

    path = HERE / NAME / FILE
    if not path.is_file():
        raise LstmTextError(
            "the built-in model 'langid' is not installed in this copy of lstm-text (run 'make pretrained' in a "
            "source checkout)"
        )
    return Langid.read(path)


def languages() -> list[str]:
    """The ISO 639 codes langid tells apart."""
    return _langid().labels


@dataclass
class _Found:
    """What langid finds in a batch of lines: (B,) languages; (B, L) probabilities (rows of NO_TEXT and UNKNOWN
    lines mean nothing); (B,) letters; (B,) whether most letters are characters of the languages asked about."""

    langs: list[str]
    probs: np.ndarray
    letters: np.ndarray
    script: np.ndarray


def _scan(texts: list[str], reads: Iterable[str], batch_size: int) -> Iterator[_Found]:
    """``_Found`` for each ``batch_size`` lines of ``texts``, ``reads`` the languages asked about."""
    m = _langid()
    ours = np.array([lang in set(reads) for lang in m.labels])  # (L,)
    scripts = m.writes[ours].any(0)  # (S,) the scripts those languages write
    for k in range(0, len(texts), batch_size):
        heads = [head_of(t) for t in texts[k : k + batch_size]]
        letters, seen, shares = m.letters(heads)
        probs = m.probs(heads, shares)  # (B, L)
        found = np.array(m.labels, object)[probs.argmax(1)]
        found[seen * 2 <= letters] = UNKNOWN
        found[letters == 0] = NO_TEXT
        yield _Found(found.tolist(), probs, letters, shares[:, scripts].sum(1) > 0.5)


def identify(texts: list[str], batch_size: int = 2048) -> list[tuple[str, np.ndarray | None]]:
    """(lang, probabilities over ``languages()``) for each text: ``NO_TEXT`` for a text without letters and
    ``UNKNOWN`` for one whose letters are mostly characters langid never saw (both without probabilities),
    else langid's most likely language. ``batch_size`` lines at a time."""
    out: list[tuple[str, np.ndarray | None]] = []
    for f in _scan(texts, (), batch_size):
        out += [(lang, None if lang in (NO_TEXT, UNKNOWN) else p) for lang, p in zip(f.langs, f.probs)]
    return out


class Gate:
    """Each line's language (``identify``) and whether a model that reads ``reads`` answers it.

    A line is refused when most of its letters are in scripts none of the model's languages writes (Hangul for
    a model that reads English), when langid gives the model's languages at most ``1 - threshold``
    of its probability (``1 - SURE`` for a line of fewer than ``MIN_LETTERS`` letters), or when it is
    ``UNKNOWN``. A model that records no language, or one that reads a language langid does not know (langid
    could not tell that language apart), refuses nothing; a line without letters is never refused.

    ``also``: the languages a second model reads for this one (the built-ins' ``multilingual``): a line the model
    would refuse goes to it when langid names one of them, so the model answers the lines it answered without
    one, as it did (English figures barely move), and the second model the lines that got no label; and so does
    a line langid names in a language ``ALSO_READ`` with the model's that the second model reads (Nigerian
    Pidgin) when the model's own languages have less than half its probability.
    """

    REFUSED, OWN, ALSO = 0, 1, 2  # who reads a line: nobody, the model, the second model

    def __init__(self, reads: Iterable[str], threshold: float = THRESHOLD, also: Iterable[str] = ()):
        self.reads, self.threshold, self.also = list(reads), threshold, set(also)

    @functools.cached_property
    def refuses(self) -> bool:
        """Whether this gate can refuse a line at all (loads langid)."""
        return bool(self.reads) and set(self.reads) <= set(languages())

    @functools.cached_property
    def _read(self) -> set[str]:
        """The languages the model reads, and those ``ALSO_READ`` with them."""
        return set(self.reads).union(*(ALSO_READ.get(lang, ()) for lang in self.reads))

    @functools.cached_property
    def _mask(self) -> np.ndarray:
        """(L,) bool over langid's labels: ``_read``."""
        return np.array([lang in self._read for lang in languages()])

    @functools.cached_property
    def _own(self) -> np.ndarray:
        """(L,) bool over langid's labels: ``reads``."""
        return np.array([lang in self.reads for lang in languages()])

    @functools.cached_property
    def _handed(self) -> set[str]:
        """The languages ``ALSO_READ`` with the model's that the second model reads: it reads them better."""
        return (self._read - set(self.reads)) & self.also

    def __call__(self, texts: list[str], batch_size: int = 2048) -> list[tuple[str, int]]:
        """(lang, reader) for each of ``texts``: ``REFUSED``, ``OWN`` or ``ALSO``; a blank text is ``NO_TEXT``
        and ``OWN``."""
        full = [i for i, t in enumerate(texts) if t.strip()]
        out = [(NO_TEXT, self.OWN)] * len(texts)
        if not self.refuses:
            found = identify([texts[i] for i in full], batch_size)
            for i, (lang, _) in zip(full, found):
                out[i] = (lang, self.OWN)
            return out
        lines = [texts[i] for i in full]
        at = 0
        for f in _scan(lines, self._read, batch_size):
            read = np.where(f.script, f.probs[:, self._mask].sum(1), 0.0)  # (B,) the model's languages' share
            ok = (read > 1.0 - self.threshold) | ((f.letters < MIN_LETTERS) & (read > 1.0 - SURE))
            own = f.probs[:, self._own].sum(1)  # (B,) the model's own languages' share (without ``ALSO_READ``)
            for lang, yes, mine in zip(f.langs, ok.tolist(), own.tolist()):
                if lang == NO_TEXT:
                    who = self.OWN
                elif lang in self.also and (not yes or (lang in self._handed and mine < 0.5)):
                    who = self.ALSO
                else:
                    who = self.OWN if lang != UNKNOWN and yes else self.REFUSED
                out[full[at]] = (lang, who)
                at += 1
        return out


class Unread:
    """Counts, by language, the lines a model did not read (no label on a non-blank line) as its results pass
    through: ``lstm-text classify``'s closing notice."""

    def __init__(self, reads: Iterable[str]):
        self.reads = list(reads)
        self.counts: Counter[str] = Counter()

    def __call__(self, pairs: Iterable[tuple[str, dict]]) -> Iterator[tuple[str, dict]]:
        for text, r in pairs:
            if r["label"] is None and text.strip():
                self.counts[r.get("lang", UNKNOWN)] += 1
            yield text, r

    def notice(self) -> str:
        """One line saying how many lines got no label and in which languages ("" when none)."""
        n = sum(self.counts.values())
        if not n:
            return ""
        by = ", ".join(f"{lang} {k:,}" for lang, k in self.counts.most_common())
        return (
            f"{n:,} line{'s' if n != 1 else ''} in languages this model does not read ({by}) got no label; "
            f"it reads {', '.join(self.reads)}"
        )

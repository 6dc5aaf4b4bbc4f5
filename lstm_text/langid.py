"""Language identification: the built-in ``langid`` classifier (characters, NumPy inference), loaded once per
process, and ``Gate``: each line's language and whether a model reads it (``Model.classify``'s "lang")."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np

from .tokenizer import UNK

NAME = "langid"  # the built-in model (``pretrained.NAMES``)
PREFIX = 64  # characters of a line langid reads (whitespace collapsed): benchmarks/README.md, "Language ID"
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


@functools.cache
def _langid():
    """The built-in ``langid`` model, loaded on first use, once per process."""
    from .api import load

    return load(NAME)


def languages() -> list[str]:
    """The ISO 639 codes langid tells apart."""
    return _langid().labels


_NOISE = re.compile(r"https?(?::\S*)?|www\.\S*|@\w+|&\w+;|&#\d+;")  # links, @mentions, HTML entities: no language


def head_of(text: str) -> str:
    """What langid reads of ``text`` (and is trained on: benchmarks/langid_data.py): its first ``PREFIX``
    characters once links, @mentions and HTML entities are dropped, whitespace is collapsed and capitals are
    lowered. A tweet's prefix is often "@user @user http://t.co/..."; those say nothing of its language, and an
    English headline's capitals made it German."""
    return " ".join(_NOISE.sub(" ", text[: 4 * PREFIX]).split())[:PREFIX].lower()


def _mostly_unknown(head: str, ids: list[int]) -> bool:
    """Whether most letters of ``head`` are characters langid never saw (ids: ``head``'s, UNK for those)."""
    unknown = letters = 0
    for c, i in zip(head, ids):
        if c.isalpha():
            letters += 1
            unknown += i == UNK
    return unknown * 2 > letters


def identify(texts: list[str], batch_size: int = 512) -> list[tuple[str, np.ndarray | None]]:
    """(lang, probabilities over ``languages()``) for each text: ``NO_TEXT`` for a text without letters and
    ``UNKNOWN`` for one whose letters are mostly characters langid never saw (both without probabilities),
    else langid's most likely language. Batched and sorted by length as classification is."""
    m = _langid()
    clf, tok, labels = m.classifier, m.tokenizer, m.labels
    out: list[tuple[str, np.ndarray | None]] = []
    todo: list[int] = []
    seqs: list[list[int]] = []
    for i, t in enumerate(texts):
        head = head_of(t)
        ids = tok.encode(head)
        if not any(map(str.isalpha, head)):
            out.append((NO_TEXT, None))
        elif UNK in ids and _mostly_unknown(head, ids):
            out.append((UNKNOWN, None))
        else:
            out.append(("", None))
            todo.append(i)
            seqs.append(ids)
    if seqs:
        probs = clf.probs(seqs, batch_size)  # (N, L)
        top = probs.argmax(1)
        for j, i in enumerate(todo):
            out[i] = (labels[top[j]], probs[j])
    return out


class Gate:
    """Each line's language (``identify``) and whether a model that reads ``reads`` answers it.

    A line is refused when langid gives the model's languages at most ``1 - threshold`` of its probability
    (``1 - SURE`` for a line of fewer than ``MIN_LETTERS`` letters), or finds it ``UNKNOWN``. A model that
    records no language, or one that reads a language langid does not know (langid could not tell that language
    apart), refuses nothing; a line without letters is never refused.
    """

    def __init__(self, reads: Iterable[str], threshold: float = THRESHOLD):
        self.reads, self.threshold = list(reads), threshold

    @functools.cached_property
    def refuses(self) -> bool:
        """Whether this gate can refuse a line at all (loads langid)."""
        return bool(self.reads) and set(self.reads) <= set(languages())

    @functools.cached_property
    def _mask(self) -> np.ndarray:
        """(L,) bool over langid's labels: the languages the model reads, and those ``ALSO_READ`` with them."""
        reads = set(self.reads).union(*(ALSO_READ.get(lang, ()) for lang in self.reads))
        return np.array([lang in reads for lang in languages()])

    def __call__(self, texts: list[str], batch_size: int = 512) -> list[tuple[str, bool]]:
        """(lang, read) for each of ``texts``: a blank text is ``NO_TEXT`` and read."""
        full = [i for i, t in enumerate(texts) if t.strip()]
        found = identify([texts[i] for i in full], batch_size)
        out = [(NO_TEXT, True)] * len(texts)
        refuses = self.refuses
        for i, (lang, p) in zip(full, found):
            if not refuses or lang == NO_TEXT:
                out[i] = (lang, True)
            elif p is None:  # UNKNOWN
                out[i] = (lang, False)
            else:
                read = float(p[self._mask].sum())
                if read <= 1.0 - self.threshold and read > 1.0 - SURE:  # a short line needs more certainty
                    read = 1.0 if sum(map(str.isalpha, head_of(texts[i]))) < MIN_LETTERS else read
                out[i] = (lang, read > 1.0 - self.threshold)
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

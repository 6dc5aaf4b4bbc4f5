"""Pretrained word vectors (GloVe, word2vec text, fastText ``.vec``; gzipped or not) for ``--vectors``.

Owns reading a vector file into a float32 matrix, and turning it into the initial embedding of a model's
vocabulary. numpy and stdlib only.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np

from ..errors import LstmTextError

SPACE_MARK = "\u2581"  # SentencePiece's word-boundary marker: "\u2581good" is "good" at the start of a word
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_SNIFF_BYTES = 1 << 16
_BATCH_ROWS = 4096  # rows parsed per np.loadtxt call: its C parser beats a Python loop over lines by ~20%
# Bytes that never appear in a text file; float32 data in a binary word2vec file is full of them.
_NON_TEXT = bytes(sorted(set(range(32)) - {9, 10, 12, 13}))


@dataclass
class WordVectors:
    """Words and their vectors: row ``i`` of ``matrix`` belongs to ``words[i]``."""

    words: list[str]
    matrix: np.ndarray  # (N, D) float32
    index: dict[str, int] = field(init=False, repr=False)  # word -> row

    def __post_init__(self):
        if self.matrix.ndim != 2 or len(self.words) != self.matrix.shape[0]:
            raise ValueError(f"{len(self.words)} words but a matrix of shape {self.matrix.shape}")
        self.matrix = np.asarray(self.matrix, dtype=np.float32)
        self.index = {}
        for i, w in enumerate(self.words):
            self.index.setdefault(w, i)

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def __len__(self) -> int:
        return len(self.words)

    def get(self, word: str) -> np.ndarray | None:
        """The vector of ``word`` (a view into ``matrix``: copy it before changing it), or ``None``."""
        i = self.index.get(word)
        return None if i is None else self.matrix[i]


def read_vectors(
    path: str | Path,
    *,
    words: set[str] | None = None,
    limit: int = 0,
    normalize: Callable[[str], str] | None = None,
) -> WordVectors:
    """Read a word-vector file, streaming it line by line.

    Formats: GloVe text (``word v1 ... vD`` per line) and word2vec text / fastText ``.vec`` (the same rows
    after a ``COUNT DIM`` header line, recognised as a first line of exactly two integers). Gzip is
    detected by its magic bytes, whatever the suffix. Lines are decoded as UTF-8 one at a time with
    ``errors="replace"``: a bad byte turns into U+FFFD in that word instead of failing the whole read.
    Words that contain spaces (GloVe 840B has a few, like ``". . ."``) are kept whole. Blank lines are
    skipped. The header's COUNT is only a size hint: files cut with ``head -n`` keep a header that is too big.

    Args:
        path: the vector file.
        words: keep only these words (compared after ``normalize``); rows of other words are counted and
            their number of values checked, but their numbers are not parsed, which makes a filtered read
            of a 2M-word fastText file several times faster and its matrix small.
        limit: read at most this many rows of the file (0: all), kept or not; files are frequency-ordered.
        normalize: maps each file word to its key (e.g. ``str.lower``). When two words map to the same
            key, the first one wins: it is the more frequent one. ``WordVectors.words`` holds the keys.

    Raises:
        LstmTextError: for a missing, empty, binary, damaged or malformed file, naming the line and the fix.
    """
    path = Path(path)
    if limit < 0:
        raise LstmTextError(f"the vectors' row limit must be 0 (all rows) or more, not {limit}")
    if words is not None and not isinstance(words, (set, frozenset)):
        words = set(words)
    compressed = _check_file(path)

    builder = _MatrixBuilder(path)
    rows = 0  # rows of the file seen, kept or not (for `limit`)
    header_dim = 0
    index: dict[str, int] = {}
    kept: list[str] = []
    batch_rest: list[str] = []
    batch_lines: list[int] = []
    line_no = 0
    try:
        f = gzip.open(path, "rb") if compressed else open(path, "rb", buffering=1 << 20)
    except OSError as e:
        raise LstmTextError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        for line_no, line in _lines(f):
            if line_no == 1:
                line = line.lstrip("\ufeff")
                header = _parse_header(line)
                if header is not None:
                    count, header_dim = header
                    if header_dim < 1:
                        raise LstmTextError(
                            f"{path}, line 1: the header says {header_dim} dimensions; fix or remove it"
                        )
                    builder.start(header_dim, _first_capacity(count, limit, words))
                    continue
            if not line:
                continue
            if builder.dim == 0:  # first row without a header: it sets the dimension
                dim = line.count(" ")
                if dim == 0:
                    raise LstmTextError(
                        f"{path}, line {line_no}: a word with no numbers after it (is this a word-vector file?)"
                    )
                builder.start(dim, _first_capacity(0, limit, words))
            word, rest = _split_row(path, line_no, line, builder.dim, header_dim)
            rows += 1
            key = normalize(word) if normalize is not None else word
            if (words is None or key in words) and key not in index:
                index[key] = len(kept)
                kept.append(key)
                batch_rest.append(rest)
                batch_lines.append(line_no)
                if len(batch_rest) == _BATCH_ROWS:
                    builder.add(batch_rest, batch_lines)
                    batch_rest, batch_lines = [], []
            if rows == limit:
                break
    except LstmTextError:
        if compressed:  # a bad row in a gzip file is often damage: say so when the rest fails its checks
            _check_gzip_rest(path, f, line_no)
        raise
    except (OSError, EOFError, zlib.error) as e:
        if not compressed:
            assert isinstance(e, OSError)  # reading a plain file raises nothing else
            raise LstmTextError(f"cannot read {path}: {e.strerror or e}") from None
        raise _damaged_gzip(path, e, line_no) from None
    finally:
        f.close()
    if batch_rest:
        builder.add(batch_rest, batch_lines)

    if not kept:
        if rows and words is not None:
            raise LstmTextError(
                f"{path}: none of the {len(words)} words asked for is among the {rows} rows read "
                "(vectors for another language, or different casing? try a larger limit or normalize)"
            )
        what = "a header but no vectors (is the file truncated?)" if header_dim else "no vectors (is it empty?)"
        raise LstmTextError(f"{path} has {what}")
    return WordVectors(kept, builder.finish())


def vector_vocabulary(
    words: Iterable[str],
    vectors: WordVectors,
    *,
    max_words: int | None,
    max_vectors: int,
    tune: int = 0,
    min_count: int = 2,
) -> tuple[list[str], int]:
    """The words of a word tokenizer over pretrained vectors, and how many of them (first) the model trains.

    First the data's words the vectors lack, seen at least ``min_count`` times (most frequent first, at most
    ``max_words``, None: all; e.g. ``n't``, numbers, names), then the data's ``tune`` most frequent words that
    have vectors: the model trains their rows (the latter from their vectors). Then the vectors'
    ``max_vectors`` most frequent words and any other vector word the data uses as often: those rows stay as
    pretrained, so a word the labelled data never shows still sits beside its neighbours. Ids 0 and 1 (PAD,
    UNK) precede all of them, so the trained rows are ids ``[0, 2 + count)``.

    Args:
        words: the data's word tokens (normalised), with repeats.
    """
    counts = Counter(words)
    lacking = sorted(
        (w for w, n in counts.items() if n >= min_count and w not in vectors.index), key=lambda w: (-counts[w], w)
    )
    lacking = lacking[:max_words]
    frequent = [w for w, n in counts.most_common() if n >= min_count and w in vectors.index]
    trained = lacking + frequent[:tune]
    kept = vectors.words[:max_vectors]
    used = [w for w in vectors.words[max_vectors:] if counts.get(w, 0) >= min_count]
    seen = set(trained)
    rest = [w for w in dict.fromkeys(kept + used) if w not in seen]  # each once, in order
    return trained + rest, len(trained)


def embedding_init(
    vectors: WordVectors, pieces: list[str], embed_dim: int, *, scale: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The initial embedding of a vocabulary: pretrained vectors where they exist, small random rows elsewhere.

    A piece takes the vector of the same word, or of itself without a leading SentencePiece marker
    (``"\u2581good"`` -> ``"good"``). Other rows are uniform(-scale, scale) from ``np.random.default_rng(seed)``,
    drawn for every row before the found rows are overwritten, so they do not depend on the vectors.
    Found rows are copied as they are, not rescaled: GloVe rows have norms around 5, much larger than the
    random rows (about ``scale * sqrt(D / 3)``); the mask lets the caller rescale or freeze them.

    Returns:
        ``(matrix, found)``: float32 ``(len(pieces), embed_dim)`` and a bool ``(len(pieces),)`` mask of the
        rows that came from the vectors.
    """
    if embed_dim != vectors.dim:
        raise LstmTextError(
            f"{{embed}} {embed_dim} does not match the vectors' dimension {vectors.dim}; use {{embed}} {vectors.dim}",
            "embed",
        )
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-scale, scale, size=(len(pieces), embed_dim)).astype(np.float32)
    found = np.zeros(len(pieces), dtype=bool)
    for i, piece in enumerate(pieces):
        row = vectors.index.get(piece)
        if row is None and piece.startswith(SPACE_MARK) and len(piece) > 1:
            row = vectors.index.get(piece[1:])
        if row is not None:
            matrix[i] = vectors.matrix[row]
            found[i] = True
    return matrix, found


def _check_file(path: Path) -> bool:
    """Fail early on files that cannot be vectors; return whether the file is gzipped."""
    if not path.exists():
        raise LstmTextError(f"vectors file not found: {path} (check the {{vectors}} path)", "vectors")
    if path.is_dir():
        raise LstmTextError(f"{path} is a directory; give a vectors file such as glove.6B.100d.txt", "vectors")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if not magic:
            raise LstmTextError(f"{path} is empty; give a vectors file such as glove.6B.100d.txt")
        if magic.startswith(_ZIP_MAGIC):
            raise LstmTextError(f"{path} is a zip archive; unzip it and give one of the .txt files inside")
        compressed = magic.startswith(_GZIP_MAGIC)
        with gzip.open(path, "rb") if compressed else open(path, "rb") as f:
            sample = f.read(_SNIFF_BYTES)
    except OSError as e:
        raise LstmTextError(f"cannot read {path}: {e.strerror or e}") from None
    except (EOFError, zlib.error) as e:
        raise _damaged_gzip(path, e) from None
    # A binary word2vec file starts with a text header, then raw float32s: NULs and control bytes.
    if b"\0" in sample or len(sample.translate(None, _NON_TEXT)) < 0.99 * len(sample):
        raise LstmTextError(
            f"{path} is not a text file: binary word2vec files are not supported; convert to text format "
            "(gensim: KeyedVectors.load_word2vec_format(f, binary=True).save_word2vec_format(out, binary=False))"
        )
    return compressed


def _check_gzip_rest(path: Path, f: BinaryIO | gzip.GzipFile, line_no: int):
    """Read a gzip file to its end, raising the damaged-gzip error if its data or checksum are bad."""
    try:
        while f.read(1 << 20):
            pass
    except (OSError, EOFError, zlib.error) as e:
        raise _damaged_gzip(path, e, line_no) from None


def _damaged_gzip(path: Path, error: Exception, line_no: int = 0) -> LstmTextError:
    where = f"after line {line_no}: " if line_no else ""
    return LstmTextError(f"{path} is a damaged or truncated gzip file ({where}{error}); download it again")


def _lines(f: Iterable[bytes]) -> Iterator[tuple[int, str]]:
    """(line number, line without trailing whitespace), decoded one line at a time."""
    for n, line in enumerate(f, 1):
        # rstrip: fastText rows end in "v300 \n", Windows files in "\r\n"
        yield n, line.decode("utf-8", "replace").rstrip()


def _parse_header(line: str) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _split_row(path: Path, line_no: int, line: str, dim: int, header_dim: int) -> tuple[str, str]:
    """Split a row into its word and the text of its ``dim`` values, or raise naming the line."""
    n = line.count(" ")  # number of values, for a word without spaces
    if n == dim:
        word, _, rest = line.partition(" ")
        return word, rest
    if n > dim:  # maybe a word with spaces in it: the last `dim` fields are the values
        word = line.rsplit(" ", dim)[0]
        if not _is_number(word.rsplit(" ", 1)[-1]):
            return word, line[len(word) + 1 :]
    if header_dim:
        raise LstmTextError(
            f"{path}, line {line_no}: {n} values, but the header on line 1 says {dim} "
            "(is the header wrong, or the file truncated?)"
        )
    raise LstmTextError(
        f"{path}, line {line_no}: {n} values, expected {dim} (is the file truncated or not a word-vector file?)"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_capacity(count: int, limit: int, words: set[str] | None) -> int:
    """Rows to allocate at first: the smallest known bound on the rows kept, never huge on a guess."""
    bounds = [b for b in (count, limit, len(words) if words is not None else 0) if b > 0]
    return max(1, min([*bounds, 1 << 20])) if bounds else 1 << 14


class _MatrixBuilder:
    """A float32 matrix that grows in place (``ndarray.resize``) as batches of rows are parsed into it.

    Growing and the final trim reallocate rather than copy into a second array, so peak memory stays
    close to the final matrix instead of twice it.
    """

    def __init__(self, path: Path):
        self.path = path
        self.dim = 0
        self.n = 0
        self.buf = np.empty((0, 0), dtype=np.float32)

    def start(self, dim: int, capacity: int):
        self.dim = dim
        self.buf = np.empty((capacity, dim), dtype=np.float32)

    def add(self, rests: list[str], line_nos: list[int]):
        try:
            block = np.loadtxt(rests, dtype=np.float32, delimiter=" ", comments=None, ndmin=2)  # (B, D)
        except ValueError as e:
            self._raise_bad_number(rests, line_nos, e)
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            line_no = line_nos[int(np.argmax(bad))]
            raise LstmTextError(
                f"{self.path}, line {line_no}: a value is nan, inf or too large for float32 (is the file damaged?)"
            )
        end = self.n + len(block)
        if end > self.buf.shape[0]:
            self.buf.resize((max(end, 2 * self.buf.shape[0]), self.dim), refcheck=False)
        self.buf[self.n : end] = block
        self.n = end

    def finish(self) -> np.ndarray:
        self.buf.resize((self.n, self.dim), refcheck=False)
        return self.buf

    def _raise_bad_number(self, rests: list[str], line_nos: list[int], error: ValueError) -> NoReturn:
        """The slow path after np.loadtxt failed: find the first value that is not a number."""
        for rest, line_no in zip(rests, line_nos):
            for value in rest.split(" "):
                if not _is_number(value):
                    raise LstmTextError(
                        f"{self.path}, line {line_no}: {value[:40]!r} is not a number (is this a word-vector file?)"
                    )
        lines = f"line {line_nos[0]}" if len(line_nos) == 1 else f"lines {line_nos[0]}-{line_nos[-1]}"
        raise LstmTextError(f"{self.path}, {lines}: {error} (is the file damaged?)")

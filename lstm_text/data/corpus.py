"""A corpus as files: paths, dataset names, directories, globs and ``.gz`` files, read in bounded,
newline-aligned chunks, with each file cut into a training part and a validation part (its last
``val_fraction`` of bytes). Nothing here ever holds the whole text. Standard library only.
"""

from __future__ import annotations

import glob
import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import LstmTextError

CHUNK = 4 << 20  # bytes per chunk: a worker's unit of tokenizing (memory in flight: a few chunks per worker)
NEWLINE_REACH = 1 << 20  # how far past a chunk's nominal end to look for a line break before cutting anywhere


@dataclass(frozen=True)
class Source:
    """One file of a corpus. Bytes [start, cut) train, [cut, size) validate (``size``: of the text, after gunzip)."""

    path: str
    size: int
    start: int  # 3 after a UTF-8 byte-order mark, else 0
    cut: int

    @property
    def gz(self) -> bool:
        return self.path.endswith(".gz")

    def part(self, which: int) -> tuple[int, int]:
        """Byte range of part 0 (training) or 1 (validation)."""
        return (self.start, self.cut) if which == 0 else (self.cut, self.size)


def _is_glob(arg: str) -> bool:
    return any(c in arg for c in "*?[")


def _files_in(d: Path) -> list[Path]:
    """Regular files under ``d``, recursively, in name order; hidden files and folders are skipped."""
    out = []
    for root, dirs, files in os.walk(d, followlinks=True):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out


def did_you_mean(name: str) -> str:
    """A suggestion when a missing file's name is close to a dataset name (``tinyshakespear``)."""
    import difflib

    from .datasets import REGISTRY

    close = difflib.get_close_matches(Path(name).name.lower(), list(REGISTRY), n=1, cutoff=0.75)
    return f" (did you mean the dataset {close[0]!r}?)" if close else ""


def resolve_corpus(arg: str) -> Path:
    """A path to a text file, or the name of a registered dataset (see ``datasets.REGISTRY``)."""
    from . import datasets

    p = Path(arg)
    if not p.exists() and arg in datasets.REGISTRY:
        return datasets.resolve(arg)
    return p


def expand(args: list[str]) -> list[Path]:
    """The files of a corpus given as paths, dataset names, directories or glob patterns, in order.

    Every file is checked readable before any work starts, so a bad one among many fails at once.
    """
    if not args:
        raise LstmTextError("no corpus given: pass a text file or a dataset name such as tinyshakespeare")
    files: list[Path] = []
    for arg in args:
        if str(arg) == "-":
            raise LstmTextError("reading a corpus from stdin is not supported; give a file path")
        p = resolve_corpus(str(arg))
        if p.is_dir():
            found = _files_in(p)
            if not found:
                raise LstmTextError(f"{p} is a directory with no text files in it")
            files += found
        elif p.exists():
            files.append(p)
        elif _is_glob(str(arg)):
            found = [Path(f) for f in sorted(glob.glob(str(arg), recursive=True)) if Path(f).is_file()]
            if not found:
                raise LstmTextError(f"no files match {arg}")
            files += found
        else:
            raise LstmTextError(f"file not found: {p}{did_you_mean(str(arg))}")
    for f in files:
        check_regular(f)
        try:
            with open(f, "rb") as fh:
                fh.read(1)
        except OSError as e:
            raise LstmTextError(f"cannot read {f}: {e.strerror}") from None
    return files


def check_regular(path: str | Path) -> None:
    """Refuse a special file by its type before opening it: a FIFO blocks the open until a writer comes (for
    ever), and /dev/zero or /dev/urandom never end (their size reads as 0)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise LstmTextError(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else None
        kind = kind or ("a socket" if stat.S_ISSOCK(mode) else "a special file")
        raise LstmTextError(f"{path} is {kind}, not a text file; give a regular file (save a stream to one first)")


def open_bytes(path: str):
    """A binary stream of the file's text bytes (``.gz`` decompressed on the fly)."""
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _text_size(path: str) -> int:
    if not path.endswith(".gz"):
        return os.path.getsize(path)
    n = 0
    try:
        with gzip.open(path, "rb") as f:
            while b := f.read(CHUNK):
                n += len(b)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise LstmTextError(f"{path} is not a readable gzip file ({e})") from None
    return n


def _read_at(path: str, offset: int, n: int) -> bytes:
    with open_bytes(path) as f:
        f.seek(offset)
        return f.read(n)


def char_start(b: bytes, pos: int) -> int:
    """``pos`` moved forward past UTF-8 continuation bytes of ``b``: the start of a character (or the end)."""
    while pos < len(b) and 0x80 <= b[pos] < 0xC0:
        pos += 1
    return pos


def _char_start(path: str, pos: int, size: int) -> int:
    """``char_start`` at byte ``pos`` of a file (a character is at most 4 bytes)."""
    return min(pos + char_start(_read_at(path, pos, 4), 0), size)


def source(path: Path, val_fraction: float) -> Source:
    """A file's byte size and its train/validation cut (the last ``val_fraction`` of its bytes validates)."""
    p = str(path)
    size = _text_size(p)
    head = _read_at(p, 0, 3)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise LstmTextError(f"{p} is UTF-16 text; convert it to UTF-8 first (e.g. iconv -f UTF-16 -t UTF-8)")
    start = 3 if head == b"\xef\xbb\xbf" else 0
    cut = start + int((size - start) * (1.0 - val_fraction))
    return Source(p, size, start, _char_start(p, cut, size) if 0 < cut < size else cut)


def sources(files: list[Path], val_fraction: float) -> list[Source]:
    srcs = [source(f, val_fraction) for f in files]
    if all(s.size == s.start for s in srcs):
        names = " ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        raise LstmTextError(f"the corpus {names} is empty")
    return srcs


@dataclass(frozen=True)
class Chunk:
    """A newline-aligned byte range of one part of one file; ``last``: the part's final chunk. ``data`` carries
    the bytes for gzip files (which cannot be read at an offset); plain files are read by whoever encodes."""

    file: int
    part: int
    offset: int
    length: int
    last: bool
    data: bytes | None = None

    def read(self, path: str) -> bytes:
        return self.data if self.data is not None else _read_at(path, self.offset, self.length)


def chunks(srcs: list[Source], parts: tuple[int, ...] = (0, 1), size: int = CHUNK) -> Iterator[Chunk]:
    """Every chunk of the given parts, file by file, in stream order; each ends after a line break when one is
    within reach (so a tokenizer sees whole lines: chunked encoding equals encoding the whole part)."""
    for i, s in enumerate(srcs):
        if s.gz:
            yield from _gz_chunks(i, s, parts, size)
            continue
        with open(s.path, "rb") as f:
            for part in parts:
                lo, hi = s.part(part)
                pos = lo
                while pos < hi:
                    end = min(pos + size, hi)
                    if end < hi:
                        f.seek(end)
                        look = f.read(min(NEWLINE_REACH, hi - end))
                        nl = look.find(b"\n")
                        end = end + nl + 1 if nl >= 0 else _char_start(s.path, end, hi)
                    yield Chunk(i, part, pos, end - pos, end >= hi)
                    pos = end


def _gz_chunks(i: int, s: Source, parts: tuple[int, ...], size: int) -> Iterator[Chunk]:
    with open_bytes(s.path) as f:
        pos, carry = 0, b""
        for part in (0, 1):
            lo, hi = s.part(part)
            if pos < lo:
                f.read(lo - pos)
                pos = lo
            while pos < hi:
                want = min(size, hi - pos) - len(carry)
                buf = carry + (f.read(want) if want > 0 else b"")
                if not buf:
                    break
                end = len(buf) if pos + len(buf) >= hi else buf.rfind(b"\n") + 1
                if end == 0:  # no line break in reach: cut before the last character's first byte
                    end = len(buf) - 1
                    while end > 0 and 0x80 <= buf[end] < 0xC0:
                        end -= 1
                    end = end or len(buf)
                piece, carry = buf[:end], buf[end:]
                if part in parts:
                    yield Chunk(i, part, pos, len(piece), pos + len(piece) >= hi, piece)
                pos += len(piece)
            carry = b""

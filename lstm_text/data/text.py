"""Reading text: a whole text file (one clear error for each way it can be unusable), its train/validation split,
and input lines for classify. Finding a corpus's files is ``corpus``'s."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import LstmTextError
from .corpus import char_start, check_regular, did_you_mean


def read_text(path: str | Path, encoding: str | None = None) -> str:
    """Read a text file, with one clear error for each way it can be unusable.

    ``encoding`` None: UTF-8, or UTF-16 when the file starts with a UTF-16 byte-order mark (Excel's "Unicode
    text"); a UTF-8 BOM is dropped. Otherwise any codec Python knows (``latin-1``, ``cp1252``, ...).
    """
    p = Path(path)
    if str(path) == "-":
        raise LstmTextError("reading a corpus from stdin is not supported; give a file path")
    if not p.exists():
        raise LstmTextError(f"file not found: {p}{did_you_mean(str(path))}")
    if p.is_dir():
        raise LstmTextError(f"{p} is a directory; give a text file")
    check_regular(p)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise LstmTextError(f"cannot read {p}: {e.strerror}") from None
    codec = encoding or ("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8")
    try:
        text = raw.decode(codec)
    except LookupError:
        raise LstmTextError(
            f"unknown {{encoding}} {encoding!r}; e.g. utf-8, latin-1, cp1252, utf-16", "encoding"
        ) from None
    except UnicodeDecodeError as e:
        hint = "check {encoding}"
        if not encoding:
            hint = "convert it to UTF-8 first (labelled files: or name it with {encoding}, e.g. latin-1 or cp1252)"
        name = {"utf-8": "UTF-8", "utf-16": "UTF-16"}.get(codec, codec)
        where = f"byte 0x{raw[e.start]:02x} at offset {e.start}"
        raise LstmTextError(f"{p} is not valid {name} ({where}); {hint}", "encoding") from None
    return text.removeprefix("\ufeff")  # a BOM is an encoding mark, not text


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """The first (1 - f) of a file's UTF-8 bytes train, the last f validate (nanoGPT's shakespeare_char split;
    bytes, so the cut is found without reading the file), cut at a character's start: as ``corpus.source``."""
    b = text.encode("utf-8", "surrogatepass")
    n = char_start(b, int(len(b) * (1.0 - val_fraction)))
    return b[:n].decode("utf-8", "surrogatepass"), b[n:].decode("utf-8", "surrogatepass")


def read_lines(files: list[str | Path]) -> Iterator[str]:
    """Input lines without their line endings, lazily: files in order, '-' or none for stdin (strict UTF-8)."""
    for f in files or ["-"]:
        if str(f) == "-":
            name = "stdin"
            try:  # read raw bytes so the decoding policy is ours (strict UTF-8), whatever the locale
                stream = open(sys.stdin.fileno(), encoding="utf-8", errors="strict", newline="\n", closefd=False)
            except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # a replaced sys.stdin
                stream = contextlib.nullcontext(sys.stdin)  # type: ignore[assignment]  # read alike, closed by nobody
        else:
            f = Path(f)
            if not f.exists():
                raise LstmTextError(f"file not found: {f}")
            if f.is_dir():
                raise LstmTextError(f"{f} is a directory; give a text file")
            stream, name = open(f, encoding="utf-8", errors="strict", newline="\n"), str(f)
        n = 0
        try:
            with stream as lines:
                for line in lines:
                    n += 1
                    yield line.rstrip("\r\n")
        except UnicodeDecodeError:
            raise LstmTextError(f"{name}, line {n + 1}: not valid UTF-8; convert the input to UTF-8 first") from None

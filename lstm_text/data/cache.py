"""The token cache on disk: where it lives, how its entries are keyed, and how a token folder is written (in
one rename, under a lock) and trusted (its size and a CRC-32 per block checked, else it is rebuilt).

Layout (``cache_root()``: ``$LSTM_TEXT_CACHE``, else ``$XDG_CACHE_HOME/lstm-text``, else ``~/.cache/lstm-text``)::

    files.json                     path -> (size, mtime, inode, content digest): a file is hashed once
    tokenizers/<key>.json          a tokenizer trained on a corpus (key: corpus content, tokenizer options)
    tokens/<key>/train.bin         training ids   (key: corpus content, tokenizer, val_fraction)
    tokens/<key>/val.bin           validation ids
    tokens/<key>/meta.json         counts, dtype, CRC-32 per 64 MiB block: a damaged file is rebuilt, never trusted

What goes into the files is ``tokens``'s.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import LstmTextError
from .workers import workers

FORMAT = 1  # bump when the layout of a token file or its meta changes
CRC_BLOCK = 64 << 20
MEMO_FILE = "files.json"
LOCK = ".lock"  # held (flock) by the process writing a temporary token folder; the kernel drops it when it dies


def cache_root() -> Path:
    env = os.environ.get("LSTM_TEXT_CACHE")
    if env:
        root, named = Path(env), f"LSTM_TEXT_CACHE={env}"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "lstm-text"
        named = f"the cache folder {root}"
    if root.exists() and not root.is_dir():
        raise LstmTextError(f"{named} is not a folder; set LSTM_TEXT_CACHE to a writable folder")
    return root


_WRITE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _cache_fault(folder: Path, e: OSError) -> LstmTextError:
    """One line for a cache that cannot be written (read-only, full, not a folder)."""
    fix = "free some space" if e.errno == errno.ENOSPC else "make it writable"
    return LstmTextError(
        f"cannot write the token cache in {folder}: {e.strerror}; {fix} or set LSTM_TEXT_CACHE to another folder"
    )


def key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def write_json(path: Path, obj) -> None:
    from ..checkpoint import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(obj).encode())


# -- files.json: a file's digest, kept while its size, mtime and inode stay ------------------------------
def file_stat(path: str) -> list:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def read_memo(path: Path) -> dict:
    """files.json's entries that have the right shape ([size, mtime, inode, digest]); a damaged or foreign file
    counts as empty, as any damaged cache file does (it is rewritten whole after hashing)."""
    try:
        memo = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(memo, dict):
        return {}
    return {
        k: v
        for k, v in memo.items()
        if isinstance(v, list)
        and len(v) == 4
        and all(isinstance(x, int) and not isinstance(x, bool) for x in v[:3])
        and isinstance(v[3], str)
    }


def cached_tokenizer(path: Path):
    """The tokenizer cached in ``path``, or None (missing or damaged: it is trained again)."""
    from ..tokenizer import tokenizer_from_dict

    try:
        return tokenizer_from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, LstmTextError):
        return None


# -- token files -----------------------------------------------------------------------------------------
class TokenFile:
    """A flat file of token ids. Windows are read with ``os.pread`` (nanoGPT reads its memmap per batch for
    the same reason): pages of a multi-GB file mapped for a whole run would count as resident memory."""

    def __init__(self, path: str | Path, dtype: str, n: int):
        self.path, self.dtype, self.n = Path(path), np.dtype(dtype), n
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.n

    def read(self, start: int, n: int) -> np.ndarray:
        """ids[start : start + n] as int64."""
        n = max(0, min(n, self.n - start))
        raw = os.pread(self._fd, n * self.dtype.itemsize, start * self.dtype.itemsize)
        return np.frombuffer(raw, dtype=self.dtype).astype(np.int64)

    def memmap(self) -> np.ndarray:
        """The whole file as a read-only memory map (for small files and tests)."""
        if self.n == 0:
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.n,))

    def __del__(self):
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass


class TokenWriter:
    """Appends id arrays to a file, keeping a CRC-32 per ``CRC_BLOCK`` bytes."""

    def __init__(self, path: Path):
        self.f, self.n, self.fill, self.crc = open(path, "wb"), 0, 0, 0
        self.crcs: list[int] = []

    def write(self, ids: np.ndarray) -> None:
        b = memoryview(ids.tobytes())
        self.f.write(b)
        self.n += len(ids)
        while len(b):
            k = min(CRC_BLOCK - self.fill, len(b))
            self.crc, self.fill, b = zlib.crc32(b[:k], self.crc), self.fill + k, b[k:]
            if self.fill == CRC_BLOCK:
                self.crcs.append(self.crc)
                self.crc, self.fill = 0, 0

    def close(self) -> list[int]:
        if self.fill:
            self.crcs.append(self.crc)
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        return self.crcs


def _crcs(path: Path) -> list[int]:
    from concurrent.futures import ThreadPoolExecutor

    size = path.stat().st_size

    def one(i: int) -> int:
        with open(path, "rb") as f:
            f.seek(i * CRC_BLOCK)
            return zlib.crc32(f.read(CRC_BLOCK))  # zlib releases the GIL: blocks check in parallel

    with ThreadPoolExecutor(workers()) as ex:
        return list(ex.map(one, range(-(-size // CRC_BLOCK))))


def load_tokens(d: Path) -> tuple[TokenFile, TokenFile, dict] | None:
    """The token files in ``d`` if they are complete and undamaged, else None (they are then rebuilt)."""
    try:
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            return None
        files = []
        for part in ("train", "val"):
            m, p = meta[part], d / f"{part}.bin"
            if p.stat().st_size != m["tokens"] * np.dtype(meta["dtype"]).itemsize or _crcs(p) != m["crc32"]:
                return None
            files.append(TokenFile(p, meta["dtype"], m["tokens"]))
        return files[0], files[1], meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_tokens(d: Path, write: Callable[[Path], dict]) -> tuple[TokenFile, TokenFile, dict]:
    """Have ``write(folder)`` write the token files (returning their meta) into a temporary folder beside ``d``,
    and move it into place in one rename. The folder is locked while it is written: what a killed run left
    behind is removed by the next one."""
    import fcntl

    tmp = d.parent / f".{d.name}.{os.getpid()}.tmp"
    try:
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        lock = open(tmp / LOCK, "wb")
    except OSError as e:
        raise _cache_fault(d.parent, e) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        meta = write(tmp)
        write_json(tmp / "meta.json", meta)
        if d.exists():  # a damaged copy (or another process's): replace it
            shutil.rmtree(d, ignore_errors=True)
        try:
            os.rename(tmp, d)
        except OSError:  # another process moved an identical copy in first
            pass
    except OSError as e:  # no space left, most often: nothing half-written stays
        if e.errno not in _WRITE_FAULTS:
            raise
        raise _cache_fault(d.parent, e) from None
    finally:
        lock.close()
        shutil.rmtree(tmp, ignore_errors=True)
    loaded = load_tokens(d)
    if loaded is None:
        raise LstmTextError(f"could not write the token cache in {d.parent}; set LSTM_TEXT_CACHE to a writable folder")
    return loaded


def sweep(folder: Path) -> None:
    """Remove the temporary token folders of runs that died (SIGKILL, power loss): those whose process is gone
    or whose lock nobody holds (the process id was reused). A folder being written keeps its lock. Temporary
    files of ``atomic_write`` go after a day."""
    import fcntl

    try:
        found = list(folder.glob(".*.tmp"))
    except OSError:
        return
    for tmp in found:
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
        except ValueError:  # a file atomic_write was writing (a random name): it takes seconds, not a day
            try:
                if tmp.is_file() and time.time() - tmp.stat().st_mtime > 86400:
                    tmp.unlink()
            except OSError:
                pass
            continue
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except OSError:  # another user's process
            alive = True
        if alive:
            try:
                with open(tmp / LOCK, "rb") as f:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken: its writer is dead
            except OSError:  # held by a live writer, or not made yet (a writer that just started)
                continue
        shutil.rmtree(tmp, ignore_errors=True)

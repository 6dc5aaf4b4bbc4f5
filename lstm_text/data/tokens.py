"""Token files: a corpus tokenized once, streaming, in chunks, on all cores, into flat id files (uint16 when
the vocabulary fits, else uint32: nanoGPT's ``train.bin``/``val.bin``), cached under a key of the corpus
content and the tokenizer, so a second run on the same corpus starts training within seconds.

Cache layout (``cache_root()``: ``$LSTM_TEXT_CACHE``, else ``$XDG_CACHE_HOME/lstm-text``, else
``~/.cache/lstm-text``)::

    files.json                     path -> (size, mtime, inode, content digest): a file is hashed once
    tokenizers/<key>.json          a tokenizer trained on a corpus (key: corpus content, tokenizer options)
    tokens/<key>/train.bin         training ids   (key: corpus content, tokenizer, val_fraction)
    tokens/<key>/val.bin           validation ids
    tokens/<key>/meta.json         counts, dtype, CRC-32 per 64 MiB block: a damaged file is rebuilt, never trusted

Nothing holds the text: workers read newline-aligned chunks (``corpus.chunks``) and return their ids.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..errors import LstmTextError
from .corpus import Chunk, Source, chunks, expand, sources

FORMAT = 1  # bump when the layout of a token file or its meta changes
SMALL = 8 << 20  # a corpus this small is tokenized in-process (no worker start-up)
CRC_BLOCK = 64 << 20
SAMPLE_BLOCK = 64 << 10  # SentencePiece's sample is drawn as blocks of this many bytes, whole lines kept
SAMPLE_LINE = 8192  # longer sample lines are cut (SentencePiece skips sentences over 64 KiB)
UNICODE = 0x110000


class Cancelled(LstmTextError):
    """A stop signal arrived while tokenizing: nothing was trained or written."""

    def __init__(self, signum: int):
        self.exit_code = 128 + signum
        super().__init__("interrupted while tokenizing the corpus; nothing was trained (the token cache is unchanged)")


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


def workers() -> int:
    """Cores this process may use (its CPU affinity, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _write_json(path: Path, obj) -> None:
    from ..checkpoint import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(obj).encode())


# -- reading ---------------------------------------------------------------------------------------------
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


@dataclass
class TokenSet:
    """What training reads: the two id files, the tokenizer, and how they were made."""

    train: TokenFile
    val: TokenFile
    tokenizer: object
    val_chars: int  # characters of the validation part (bits per character divide by this)
    fingerprint: str  # the corpus content's digest: --resume checks it
    info: dict = field(default_factory=dict)  # sizes, cache hits, seconds, sample size: reported at start


# -- workers ---------------------------------------------------------------------------------------------
_W: dict = {}  # a worker's state: the corpus paths and the tokenizer (set by _init)


def _worker_main(conn, paths: list[str], tok: dict | None) -> None:
    """A worker's life: set its signals, load the tokenizer, then answer (fn, args) tasks on ``conn`` until the
    parent closes it or kills the process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent alone decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's save-and-stop handler: a group stop kills
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, set())  # the parent held them across the fork (_Workers)
    _die_with_parent()
    try:
        _init(paths, tok)
        failed = None
    except Exception as e:  # reported with each task: the parent raises it where it collects
        failed = e
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if failed is not None:
                raise failed
            out = (True, fn(*args))
        except Exception as e:
            out = (False, e)
        try:
            conn.send(out)
        except (TypeError, AttributeError, ValueError) as e:  # a result or an error that does not pickle
            conn.send((False, LstmTextError(f"a tokenizing worker failed: {out[1]!r} ({e})")))


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its parent dies (a SIGKILL to the parent leaves no worker running)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def _init(paths: list[str], tok: dict | None) -> None:
    _W.clear()
    _W["paths"] = paths
    if tok is not None:
        from ..tokenizer import tokenizer_from_dict

        t = tokenizer_from_dict(tok)
        _W["tok"] = t
        if t.kind == "char":
            table = np.full(UNICODE, 1, dtype=np.uint32)  # UNK
            for c, i in t.index.items():
                table[ord(c)] = i
            _W["table"] = table


def _text(c: Chunk) -> str:
    path = _W["paths"][c.file]
    data = c.read(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        where = f"byte 0x{data[e.start]:02x} at offset {c.offset + e.start}"
        raise LstmTextError(f"{path} is not valid UTF-8 ({where}); convert it to UTF-8 first") from None
    nul = text.find("\x00")
    if nul >= 0:  # valid UTF-8, but a training corpus with NULs is almost always a binary file given by mistake
        raise LstmTextError(
            f"{path} contains NUL bytes (the first near byte {c.offset + nul}): is it a binary file? Give a text file"
        )
    return text


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _w_digest(c: Chunk) -> tuple[int, bytes]:
    return c.file, hashlib.sha256(c.read(_W["paths"][c.file])).digest()


def _w_count(c: Chunk) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(_codepoints(_text(c)), minlength=UNICODE)
    cps = np.flatnonzero(counts)
    return cps, counts[cps]


def _w_encode(task: tuple[Chunk, bool, str]) -> tuple[int, np.ndarray, int]:
    """(part, ids, characters) of one chunk; ``newline``: end it with a line break (a file boundary)."""
    c, newline, dtype = task
    text = _text(c)
    if newline and not text.endswith("\n"):
        text += "\n"
    if "table" in _W:
        ids = _W["table"][_codepoints(text)].astype(dtype)
    else:
        ids = np.asarray(_W["tok"].encode(text), dtype=dtype)
    return c.part, ids, len(text)


def _w_train_sp(task: tuple[list[str], int, str]) -> dict:
    from ..tokenizer import SentencePieceTokenizer

    lines, vocab_size, kind = task
    return SentencePieceTokenizer.train_lines(lines, vocab_size, kind).to_dict()


class _Workers:
    """Worker processes, each on a pipe of its own (``multiprocessing.Pool`` shares one queue lock among its
    workers: a signal to the whole process group kills the worker that holds it, and ``Pool.terminate`` then
    waits for that lock for ever). Here no lock is shared, so stopping is a SIGKILL to each worker and a join:
    at any moment, in well under a second. Tasks run in the order given; ``apply_async`` returns a handle."""

    def __init__(self, n: int, paths: list[str], tok: dict | None):
        import multiprocessing as mp
        import signal

        # fork where there is one, as torch's DataLoader does: workers run NumPy and SentencePiece only (never
        # torch's threads), and spawn would re-run a user's script that calls lstm_text.train() unguarded
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.procs, self.conns, self.idle, self.busy, self.waiting = [], [], [], {}, deque()
        mask = hasattr(signal, "pthread_sigmask")
        if mask:  # a worker must not run the parent's handler before its own are set: hold the signals till then
            old = signal.pthread_sigmask(signal.SIG_BLOCK, _stop_signals())
        try:
            for i in range(n):
                here, there = ctx.Pipe()
                p = ctx.Process(target=_worker_main, args=(there, paths, tok), daemon=True, name=f"lstm-text-{i}")
                p.start()
                there.close()
                self.procs.append(p)
                self.conns.append(here)
                self.idle.append(i)
        except BaseException:
            self.terminate()
            raise
        finally:
            if mask:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def apply_async(self, fn, args) -> _Pending:
        r = _Pending(self)
        self.waiting.append((r, fn, args))
        self._dispatch()
        return r

    def _dispatch(self) -> None:
        while self.idle and self.waiting:
            i = self.idle.pop()
            r, fn, args = self.waiting.popleft()
            self.busy[i] = r
            try:
                self.conns[i].send((fn, args))
            except OSError:
                self._lost(i)

    def poll(self, timeout: float) -> None:
        """Collect the results that arrive within ``timeout`` seconds."""
        from multiprocessing.connection import wait

        by_conn = {self.conns[i]: i for i in self.busy}
        for c in wait(list(by_conn), timeout):
            i = by_conn[c]
            try:
                ok, value = c.recv()
            except (EOFError, OSError):
                self._lost(i)
            self.busy.pop(i).done = (ok, value)
            self.idle.append(i)
        self._dispatch()

    def _lost(self, i: int):
        """Worker ``i`` died: a stop signal to the whole group (the stop is ours too), or a fault."""
        self.procs[i].join(5.0)
        code = self.procs[i].exitcode
        if code is not None and -code in _stop_signals():
            raise Cancelled(-code) from None
        raise LstmTextError(f"a tokenizing worker process died (exit code {code}); is memory short?") from None

    def terminate(self) -> None:
        for p in self.procs:
            if p.exitcode is None:
                p.kill()
        for p in self.procs:
            p.join()
        for c in self.conns:
            c.close()
        self.procs, self.conns, self.idle, self.busy = [], [], [], {}


class _Pending:
    """A task's result: ``done`` is (ok, value) once it arrived."""

    def __init__(self, pool: _Workers | None, done: tuple | None = None):
        self.pool, self.done = pool, done

    def ready(self) -> bool:
        return self.done is not None

    def wait(self, timeout: float) -> None:
        if self.done is None:
            self.pool.poll(timeout)

    def get(self):
        ok, value = self.done
        if not ok:
            raise value
        return value


class _Inline:
    """The pool's interface, run in this process (small corpora: no worker start-up)."""

    def __init__(self, paths, tok):
        _init(paths, tok)

    def apply_async(self, fn, args) -> _Pending:
        try:
            return _Pending(None, (True, fn(*args)))
        except Exception as e:  # raised when collected, as a pool does
            return _Pending(None, (False, e))

    def terminate(self):
        pass


def _stop_signals() -> set[int]:
    import signal

    return {signal.SIGINT, signal.SIGTERM}


def _pool(paths: list[str], tok: dict | None, total_bytes: int):
    if total_bytes <= SMALL or workers() == 1:
        return _Inline(paths, tok)
    return _Workers(workers(), paths, tok)


def _ordered(pool, fn, tasks: Iterable, cancelled: Callable[[], int], window: int = 0) -> Iterator:
    """fn(task) for each task, in order, with at most ``window`` in flight (memory stays bounded); a stop
    signal (``cancelled()`` non-zero) is noticed within a fraction of a second."""
    window = window or 2 * workers() + 1
    todo, it = deque(), iter(tasks)
    while True:
        while len(todo) < window:
            t = next(it, None)
            if t is None:
                break
            todo.append(pool.apply_async(fn, (t,)))
        if not todo:
            return
        head = todo.popleft()
        while not head.ready():
            if sig := cancelled():
                raise Cancelled(sig)
            head.wait(0.1)
        yield head.get()


# -- the corpus's identity -------------------------------------------------------------------------------
def _stat(path: str) -> list:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def fingerprint(srcs: list[Source], paths: list[str], pool_for, cancelled) -> tuple[str, int]:
    """The corpus content's digest and how many bytes had to be read for it (files unchanged since an
    earlier run, by size, mtime and inode, keep their digest)."""
    memo_path = cache_root() / "files.json"
    memo = _read_memo(memo_path)
    stats = [_stat(p) for p in paths]
    todo = [i for i, p in enumerate(paths) if memo.get(p, [None])[:3] != stats[i]]
    read = 0
    if todo:
        sub = [srcs[i] for i in todo]
        read = sum(s.size for s in sub)
        parts: dict[int, list[bytes]] = {i: [] for i in todo}
        pool = pool_for(None, read)
        try:
            for j, d in _ordered(pool, _w_digest, chunks(sub, parts=(0, 1)), cancelled):
                parts[todo[j]].append(d)
        finally:
            pool.terminate()
        for i in todo:
            memo[paths[i]] = stats[i] + [hashlib.sha256(b"".join(parts[i])).hexdigest()]
        try:
            _write_json(memo_path, memo)
        except OSError:
            pass  # a read-only cache costs a re-hash next time, nothing else
    digests = [memo[p][3] for p in paths]
    return _key(digests, [(s.start, s.cut, s.size) for s in srcs]), read


def _read_memo(path: Path) -> dict:
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


# -- tokenizers ------------------------------------------------------------------------------------------
def _char_counts(srcs, paths, pool_for, cancelled) -> dict[str, int]:
    total = np.zeros(UNICODE, dtype=np.int64)
    pool = pool_for(None, sum(s.cut - s.start for s in srcs))
    try:
        for cps, n in _ordered(pool, _w_count, chunks(srcs, parts=(0,)), cancelled):
            total[cps] += n
    finally:
        pool.terminate()
    cps = np.flatnonzero(total)
    return {chr(int(c)): int(total[c]) for c in cps}


def sample_lines(srcs: list[Source], budget: int, seed: int, cancelled=lambda: 0) -> tuple[list[str], int]:
    """Lines of the training parts for SentencePiece: all of them when they fit ``budget`` bytes, else
    blocks of ``SAMPLE_BLOCK`` bytes drawn with probability budget/size (seeded), their whole lines kept.
    Returns (lines, bytes sampled)."""
    total = sum(s.cut - s.start for s in srcs)
    p = min(1.0, budget / max(total, 1))
    rng = random.Random(seed)
    lines, got = [], 0
    for s in srcs:
        for c in chunks([s], parts=(0,)):
            if sig := cancelled():
                raise Cancelled(sig)
            if p >= 1.0:
                blocks = [c.read(s.path)]
            else:
                picked = [o for o in range(0, c.length, SAMPLE_BLOCK) if rng.random() < p]
                if not picked:
                    continue
                data = c.read(s.path) if c.data is not None or len(picked) > 4 else None
                blocks = []
                for o in picked:
                    n = min(SAMPLE_BLOCK, c.length - o)
                    b = data[o : o + n] if data is not None else Chunk(0, 0, c.offset + o, n, False).read(s.path)
                    blocks.append(_whole_lines(b, at_start=o == 0, at_end=o + n >= c.length))
            for b in blocks:
                got += len(b)
                text = b.decode("utf-8", "ignore")
                for ln in text.split("\n"):
                    lines += [ln[i : i + SAMPLE_LINE] for i in range(0, len(ln), SAMPLE_LINE)]
    return lines, got


def _whole_lines(b: bytes, at_start: bool, at_end: bool) -> bytes:
    """The complete lines of a block cut out of a chunk (the block itself when it holds no line break)."""
    first = 0 if at_start else b.find(b"\n") + 1
    last = len(b) if at_end else b.rfind(b"\n") + 1
    return b[first:last] if 0 < last - first else b


def train_tokenizer_streaming(srcs, paths, kind, vocab_size, seed, sample_bytes, pool_for, cancelled):
    """(tokenizer, info): char vocabulary from a streaming count of the training parts; SentencePiece
    trained in a worker process on ``sample_lines``."""
    from ..tokenizer import CharTokenizer, tokenizer_from_dict

    if kind == "char":
        counts = _char_counts(srcs, paths, pool_for, cancelled)
        if not any(not c.isspace() for c in counts):
            raise LstmTextError(f"the corpus {' '.join(paths[:3])} is empty (only white space in its training part)")
        return CharTokenizer.from_counts(counts, vocab_size), {}
    lines, got = sample_lines(srcs, sample_bytes, seed, cancelled)
    if not lines:
        raise LstmTextError(f"the corpus {' '.join(paths[:3])} is empty")
    total = sum(s.cut - s.start for s in srcs)
    info = {"sample_bytes": got, "sample_share": got / max(total, 1)}
    pool = _pool([], None, got if got > (1 << 20) else 0)  # a big sample trains where a signal can stop it
    try:
        (d,) = _ordered(pool, _w_train_sp, [(lines, vocab_size or 2048, kind)], cancelled, window=1)
    finally:
        pool.terminate()
    return tokenizer_from_dict(d), info


# -- token files -----------------------------------------------------------------------------------------
class _Writer:
    """Appends id arrays to a file, keeping a CRC-32 per ``CRC_BLOCK`` bytes."""

    def __init__(self, path: Path):
        self.f, self.n, self.crcs, self.fill, self.crc = open(path, "wb"), 0, [], 0, 0

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


def _load(d: Path) -> tuple[TokenFile, TokenFile, dict] | None:
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


def encode_files(srcs, paths, tokenizer, out: Path, pool_for, cancelled) -> dict:
    """Tokenize every chunk of the corpus into ``out``/train.bin and val.bin; returns their meta."""
    dtype = "uint16" if tokenizer.vocab_size <= 1 << 16 else "uint32"
    nonempty = [[s.part(p)[1] > s.part(p)[0] for p in (0, 1)] for s in srcs]
    later = [[any(nonempty[j][p] for j in range(i + 1, len(srcs))) for p in (0, 1)] for i in range(len(srcs))]
    tasks = ((c, c.last and later[c.file][c.part], dtype) for c in chunks(srcs))
    writers = [_Writer(out / "train.bin"), _Writer(out / "val.bin")]
    chars = [0, 0]
    pool = pool_for(tokenizer.to_dict(), sum(s.size for s in srcs))
    try:
        for part, ids, n in _ordered(pool, _w_encode, tasks, cancelled):
            writers[part].write(ids)
            chars[part] += n
    finally:
        pool.terminate()
    meta = {"format": FORMAT, "dtype": dtype, "vocab_size": tokenizer.vocab_size}
    for i, part in enumerate(("train", "val")):
        n = writers[i].n
        meta[part] = {"tokens": n, "characters": chars[i], "crc32": writers[i].close()}
    return meta


def prepare(
    corpus: list[str],
    *,
    kind: str,
    vocab_size: int,
    val_fraction: float,
    seed: int = 0,
    sample_bytes: int = TrainConfig.tokenizer_sample,
    tokenizer=None,
    cancelled: Callable[[], int] = lambda: 0,
    build: bool = True,
) -> TokenSet:
    """The corpus's token files, from the cache or built now.

    Args:
        corpus: paths, dataset names, directories or globs (``corpus.expand``).
        kind, vocab_size: the tokenizer to train when ``tokenizer`` is None (also cached).
        val_fraction: the last fraction of each file's bytes validates.
        seed: draws SentencePiece's sample.
        sample_bytes: SentencePiece trains on at most about this many bytes of the training parts.
        tokenizer: an existing tokenizer (``--resume``): only the ids are made.
        cancelled: returns a signal number once one arrives; long passes stop within a fraction of a second.
        build: False on processes that wait for another to build (torchrun's other ranks): a miss is an error.
    """
    t0 = time.perf_counter()
    vocab_size = vocab_size or (0 if kind == "char" else 2048)  # SentencePiece's default size, keyed as such
    files = expand(corpus)
    paths = [str(Path(f).resolve()) for f in files]
    srcs = sources(files, val_fraction)
    info: dict = {"files": len(paths), "bytes": sum(s.size for s in srcs)}

    def pool_for(tok, nbytes):
        return _pool(paths, tok, nbytes)

    fp, info["hashed_bytes"] = fingerprint(srcs, paths, pool_for, cancelled)
    root = cache_root()
    if tokenizer is None:
        tkey = _key(FORMAT, fp, kind, vocab_size, None if kind == "char" else (seed, sample_bytes))
        tpath = root / "tokenizers" / f"{tkey}.json"
        tokenizer = _cached_tokenizer(tpath)
        info["tokenizer_cached"] = tokenizer is not None
        if tokenizer is None:
            if not build:
                raise LstmTextError(f"the tokenizer cache {tpath} is missing: the building process failed")
            tokenizer, more = train_tokenizer_streaming(
                srcs, paths, kind, vocab_size, seed, sample_bytes, pool_for, cancelled
            )
            info |= more
            try:
                _write_json(tpath, tokenizer.to_dict())
            except OSError:
                pass
    tok_json = json.dumps(tokenizer.to_dict(), sort_keys=True)
    d = root / "tokens" / _key(FORMAT, fp, hashlib.sha256(tok_json.encode()).hexdigest())
    for folder in (root, root / "tokenizers", d.parent):  # what runs killed outright left, on a hit as well
        _sweep(folder)
    loaded = _load(d)
    info["cache_hit"] = loaded is not None
    if loaded is None:
        if not build:
            raise LstmTextError(f"the token cache {d} is missing: the building process failed")
        info["rebuilt_damaged"] = (d / "meta.json").exists()
        t1 = time.perf_counter()
        loaded = _build(d, srcs, paths, tokenizer, pool_for, cancelled)
        info["encode_seconds"] = time.perf_counter() - t1
    train, val, meta = loaded
    info |= {"dir": str(d), "seconds": time.perf_counter() - t0, "dtype": meta["dtype"]}
    info |= {"train_tokens": len(train), "val_tokens": len(val), "train_chars": meta["train"]["characters"]}
    return TokenSet(train, val, tokenizer, meta["val"]["characters"], fp, info)


def _cached_tokenizer(path: Path):
    from ..tokenizer import tokenizer_from_dict

    try:
        return tokenizer_from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, LstmTextError):
        return None


def _build(d: Path, srcs, paths, tokenizer, pool_for, cancelled):
    """Write the token files into a temporary folder beside ``d`` and move it into place in one rename. The
    folder is locked while it is written: what a killed run left behind is removed by the next one."""
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
        meta = encode_files(srcs, paths, tokenizer, tmp, pool_for, cancelled)
        _write_json(tmp / "meta.json", meta)
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
    loaded = _load(d)
    if loaded is None:
        raise LstmTextError(f"could not write the token cache in {d.parent}; set LSTM_TEXT_CACHE to a writable folder")
    return loaded


LOCK = ".lock"  # held (flock) by the process writing a temporary token folder; the kernel drops it when it dies


def _sweep(folder: Path) -> None:
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


# -- validation sample -----------------------------------------------------------------------------------
def char_lengths(tokenizer) -> np.ndarray:
    """Characters each token id stands for (bytes that start a UTF-8 character): sums to a text's length."""
    n = tokenizer.vocab_size
    return np.array([sum(1 for b in tokenizer.piece_bytes(i) if not 0x80 <= b < 0xC0) for i in range(n)])


def val_sample(val: TokenFile, n_tokens: int, span: int, seed: int) -> np.ndarray | None:
    """A fixed, seeded sample of the validation ids as rows (k, span) of contiguous text, one row per stratum
    of the file (nanoGPT's eval_iters, but fixed so that every validation reads the same text); None when
    the whole split is no bigger than ``n_tokens``."""
    if len(val) <= n_tokens:
        return None
    k = max(1, n_tokens // span)
    stride = len(val) // k
    rng = random.Random(seed)
    rows = [val.read(i * stride + rng.randint(0, max(0, stride - span)), span) for i in range(k)]
    return np.stack(rows)

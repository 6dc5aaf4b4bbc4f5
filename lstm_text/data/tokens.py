"""Token files: a corpus tokenized once, streaming, in chunks, on all cores, into flat id files (uint16 when
the vocabulary fits, else uint32: nanoGPT's ``train.bin``/``val.bin``), cached under a key of the corpus
content and the tokenizer (``cache``), so a second run on the same corpus starts training within seconds.

Owns what the passes over the corpus compute (its fingerprint, a tokenizer trained on it, its ids) and the
validation sample. Nothing holds the text: workers (``workers``) read newline-aligned chunks
(``corpus.chunks``) and return their digests, counts or ids.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..errors import LstmTextError
from .batches import TokenIds
from .cache import (
    FORMAT,
    MEMO_FILE,
    TokenWriter,
    build_tokens,
    cache_root,
    cached_tokenizer,
    file_stat,
    key,
    load_tokens,
    read_memo,
    sweep,
    write_json,
)
from .corpus import Chunk, Source, chunks, expand, sources
from .workers import Cancelled, ordered, start_pool

SMALL = 8 << 20  # a corpus this small is tokenized in-process (no worker start-up)
SAMPLE_BLOCK = 64 << 10  # SentencePiece's sample is drawn as blocks of this many bytes, whole lines kept
SAMPLE_LINE = 8192  # longer sample lines are cut (SentencePiece skips sentences over 64 KiB)
UNICODE = 0x110000


@dataclass
class TokenSet:
    """What training reads: the two id files, the tokenizer, and how they were made."""

    train: TokenIds  # a TokenFile (or, in bench, ids in memory)
    val: TokenIds
    tokenizer: object
    val_chars: int  # characters of the validation part (bits per character divide by this)
    fingerprint: str  # the corpus content's digest: --resume checks it
    info: dict = field(default_factory=dict)  # sizes, cache hits, seconds, sample size: reported at start


# -- what the workers run ------------------------------------------------------------------------------
_W: dict = {}  # a worker's state: the corpus paths and the tokenizer (set by _init)


def _init(paths: list[str], tok: dict | None) -> None:
    _W.clear()
    _W["paths"] = paths
    if tok is not None:
        from ..tokenizer import CharTokenizer, tokenizer_from_dict

        t = tokenizer_from_dict(tok)
        _W["tok"] = t
        if isinstance(t, CharTokenizer):
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


def _pool(paths: list[str], tok: dict | None, total_bytes: int):
    """Workers holding the corpus's paths (and ``tok``, to encode): in this process for a small corpus."""
    return start_pool(_init, (paths, tok), inline=total_bytes <= SMALL)


# -- the corpus's identity -------------------------------------------------------------------------------
def fingerprint(srcs: list[Source], paths: list[str], pool_for, cancelled) -> tuple[str, int]:
    """The corpus content's digest and how many bytes had to be read for it (files unchanged since an
    earlier run, by size, mtime and inode, keep their digest)."""
    memo_path = cache_root() / MEMO_FILE
    memo = read_memo(memo_path)
    stats = [file_stat(p) for p in paths]
    todo = [i for i, p in enumerate(paths) if memo.get(p, [None])[:3] != stats[i]]
    read = 0
    if todo:
        sub = [srcs[i] for i in todo]
        read = sum(s.size for s in sub)
        parts: dict[int, list[bytes]] = {i: [] for i in todo}
        pool = pool_for(None, read)
        try:
            for j, d in ordered(pool, _w_digest, chunks(sub, parts=(0, 1)), cancelled):
                parts[todo[j]].append(d)
        finally:
            pool.terminate()
        for i in todo:
            memo[paths[i]] = stats[i] + [hashlib.sha256(b"".join(parts[i])).hexdigest()]
        try:
            write_json(memo_path, memo)
        except OSError:
            pass  # a read-only cache costs a re-hash next time, nothing else
    digests = [memo[p][3] for p in paths]
    return key(digests, [(s.start, s.cut, s.size) for s in srcs]), read


# -- tokenizers ------------------------------------------------------------------------------------------
def _char_counts(srcs, paths, pool_for, cancelled) -> dict[str, int]:
    total = np.zeros(UNICODE, dtype=np.int64)
    pool = pool_for(None, sum(s.cut - s.start for s in srcs))
    try:
        for cps, n in ordered(pool, _w_count, chunks(srcs, parts=(0,)), cancelled):
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
        (d,) = ordered(pool, _w_train_sp, [(lines, vocab_size or 2048, kind)], cancelled, window=1)
    finally:
        pool.terminate()
    return tokenizer_from_dict(d), info


def encode_files(srcs, paths, tokenizer, out: Path, pool_for, cancelled) -> dict:
    """Tokenize every chunk of the corpus into ``out``/train.bin and val.bin; returns their meta."""
    dtype = "uint16" if tokenizer.vocab_size <= 1 << 16 else "uint32"
    nonempty = [[s.part(p)[1] > s.part(p)[0] for p in (0, 1)] for s in srcs]
    later = [[any(nonempty[j][p] for j in range(i + 1, len(srcs))) for p in (0, 1)] for i in range(len(srcs))]
    tasks = ((c, c.last and later[c.file][c.part], dtype) for c in chunks(srcs))
    writers = [TokenWriter(out / "train.bin"), TokenWriter(out / "val.bin")]
    chars = [0, 0]
    pool = pool_for(tokenizer.to_dict(), sum(s.size for s in srcs))
    try:
        for part, ids, n in ordered(pool, _w_encode, tasks, cancelled):
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
        tkey = key(FORMAT, fp, kind, vocab_size, None if kind == "char" else (seed, sample_bytes))
        tpath = root / "tokenizers" / f"{tkey}.json"
        tokenizer = cached_tokenizer(tpath)
        info["tokenizer_cached"] = tokenizer is not None
        if tokenizer is None:
            if not build:
                raise LstmTextError(f"the tokenizer cache {tpath} is missing: the building process failed")
            tokenizer, more = train_tokenizer_streaming(
                srcs, paths, kind, vocab_size, seed, sample_bytes, pool_for, cancelled
            )
            info |= more
            try:
                write_json(tpath, tokenizer.to_dict())
            except OSError:
                pass
    tok_json = json.dumps(tokenizer.to_dict(), sort_keys=True)
    d = root / "tokens" / key(FORMAT, fp, hashlib.sha256(tok_json.encode()).hexdigest())
    for folder in (root, root / "tokenizers", d.parent):  # what runs killed outright left, on a hit as well
        sweep(folder)
    loaded = load_tokens(d)
    info["cache_hit"] = loaded is not None
    if loaded is None:
        if not build:
            raise LstmTextError(f"the token cache {d} is missing: the building process failed")
        info["rebuilt_damaged"] = (d / "meta.json").exists()
        t1 = time.perf_counter()
        loaded = build_tokens(d, lambda folder: encode_files(srcs, paths, tokenizer, folder, pool_for, cancelled))
        info["encode_seconds"] = time.perf_counter() - t1
    train, val, meta = loaded
    info |= {"dir": str(d), "seconds": time.perf_counter() - t0, "dtype": meta["dtype"]}
    info |= {"train_tokens": len(train), "val_tokens": len(val), "train_chars": meta["train"]["characters"]}
    return TokenSet(train, val, tokenizer, meta["val"]["characters"], fp, info)


# -- validation sample -----------------------------------------------------------------------------------
def char_lengths(tokenizer) -> np.ndarray:
    """Characters each token id stands for (bytes that start a UTF-8 character): sums to a text's length."""
    n = tokenizer.vocab_size
    return np.array([sum(1 for b in tokenizer.piece_bytes(i) if not 0x80 <= b < 0xC0) for i in range(n)])


def val_sample(val: TokenIds, n_tokens: int, span: int, seed: int) -> np.ndarray | None:
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

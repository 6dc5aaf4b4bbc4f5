"""Token files: streaming tokenization into cached id files, the per-file split, the cache's keys and its
distrust of damaged copies (and of its own files.json, temporary folders and an unwritable folder), memory that
does not grow with the corpus, and prompt stop signals."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lstm_text.data import split_text
from lstm_text.data.tokens import prepare
from lstm_text.errors import LstmTextError
from lstm_text.tokenizer import CharTokenizer, SentencePieceTokenizer

from conftest import TINY_MODEL, make_corpus, tiny_train_config, wait_for_children


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("LSTM_TEXT_CACHE", str(d))
    return d


def files_of(tmp_path, n=3, size=20_000):
    paths = []
    for i in range(n):
        p = tmp_path / f"part{i}.txt"
        p.write_text(make_corpus(size, seed=i) + ("tail without newline" if i == 1 else ""), encoding="utf-8")
        paths.append(p)
    return paths


def expected(paths, f=0.1):
    """What the token files must hold: each file's train part, then its val part, files joined by a line break."""
    tr, va = [], []
    for i, p in enumerate(paths):
        a, b = split_text(p.read_text(encoding="utf-8"), f)
        last = i == len(paths) - 1
        tr.append(a if last or a.endswith("\n") else a + "\n")
        va.append(b if last or b.endswith("\n") else b + "\n")
    return "".join(tr), "".join(va)


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_token_files_equal_a_direct_encode(tmp_path, cache, kind):
    paths = files_of(tmp_path)
    ts = prepare([str(p) for p in paths], kind=kind, vocab_size=0 if kind == "char" else 300, val_fraction=0.1)
    train_text, val_text = expected(paths)
    tok = CharTokenizer.train(train_text) if kind == "char" else SentencePieceTokenizer.train(train_text, 300, "bpe")
    assert ts.tokenizer.to_dict() == tok.to_dict()
    assert ts.train.memmap().tolist() == tok.encode(train_text)
    assert ts.val.memmap().tolist() == tok.encode(val_text)
    assert ts.val_chars == len(val_text)
    assert ts.info["dtype"] == "uint16"


def test_chunked_encoding_across_workers_equals_one_encode(tmp_path, cache, monkeypatch):
    """Small chunks and the worker pool (not the in-process path): the same ids, in order."""
    import lstm_text.data.corpus as corpus
    import lstm_text.data.tokens as tokens

    monkeypatch.setattr(tokens, "SMALL", 0)
    p = tmp_path / "c.txt"
    p.write_text(make_corpus(200_000, seed=3), encoding="utf-8")
    chunks = corpus.chunks
    monkeypatch.setattr(tokens, "chunks", lambda srcs, parts=(0, 1), size=0: chunks(srcs, parts, 7_000))
    ts = prepare([str(p)], kind="bpe", vocab_size=300, val_fraction=0.2)
    train_text, val_text = split_text(p.read_text(encoding="utf-8"), 0.2)
    assert ts.train.memmap().tolist() == ts.tokenizer.encode(train_text)
    assert ts.val.memmap().tolist() == ts.tokenizer.encode(val_text)


def test_folders_globs_and_gz_are_corpora(tmp_path, cache):
    paths = files_of(tmp_path, n=2)
    gz = tmp_path / "part2.txt.gz"
    text = make_corpus(20_000, seed=9)
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(text)
    plain = tmp_path / "part2.txt"
    by_dir = prepare([str(tmp_path)], kind="char", vocab_size=0, val_fraction=0.1)  # part0, part1, part2.txt.gz
    plain.write_text(text, encoding="utf-8")
    by_files = prepare([str(p) for p in paths] + [str(plain)], kind="char", vocab_size=0, val_fraction=0.1)
    assert by_dir.train.memmap().tolist() == by_files.train.memmap().tolist()
    assert by_dir.val.memmap().tolist() == by_files.val.memmap().tolist()
    by_glob = prepare([str(tmp_path / "part*.txt")], kind="char", vocab_size=0, val_fraction=0.1)
    assert by_glob.info["files"] == 3 and by_glob.fingerprint == by_files.fingerprint


def test_split_has_no_overlap_and_takes_each_files_end(tmp_path, cache):
    paths = files_of(tmp_path)
    ts = prepare([str(p) for p in paths], kind="char", vocab_size=0, val_fraction=0.25)
    train_text, val_text = expected(paths, 0.25)
    for p in paths:  # every file gives its last quarter (in bytes) to validation, and only that
        a, b = split_text(p.read_text(encoding="utf-8"), 0.25)
        assert b.rstrip("\n") in val_text and b[:200] not in train_text
    assert len(ts.train) + len(ts.val) == len(train_text) + len(val_text)


def test_cache_is_reused_and_invalidated(tmp_path, cache):
    p = tmp_path / "c.txt"
    p.write_text(make_corpus(30_000), encoding="utf-8")
    first = prepare([str(p)], kind="char", vocab_size=0, val_fraction=0.1)
    again = prepare([str(p)], kind="char", vocab_size=0, val_fraction=0.1)
    assert not first.info["cache_hit"] and again.info["cache_hit"] and again.info["hashed_bytes"] == 0
    assert again.info["tokenizer_cached"]
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same content: re-hashed, still a hit
    touched = prepare([str(p)], kind="char", vocab_size=0, val_fraction=0.1)
    assert touched.info["hashed_bytes"] == p.stat().st_size and touched.info["cache_hit"]
    other_tok = prepare([str(p)], kind="char", vocab_size=20, val_fraction=0.1)  # another tokenizer: new files
    assert not other_tok.info["cache_hit"] and other_tok.tokenizer.vocab_size == 20
    p.write_text(make_corpus(30_000, seed=1), encoding="utf-8")  # new content
    changed = prepare([str(p)], kind="char", vocab_size=0, val_fraction=0.1)
    assert not changed.info["cache_hit"] and changed.fingerprint != first.fingerprint
    assert changed.train.memmap().tolist() == changed.tokenizer.encode(split_text(p.read_text(), 0.1)[0])


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta", "tokenizer", "memo"])
def test_a_damaged_cache_is_rebuilt_never_trusted(tmp_path, cache, damage):
    p = tmp_path / "c.txt"
    p.write_text(make_corpus(30_000), encoding="utf-8")
    ts = prepare([str(p)], kind="char", vocab_size=0, val_fraction=0.1)
    d = cache / "tokens" / os.path.basename(ts.info["dir"])
    if damage == "flip":
        b = bytearray((d / "train.bin").read_bytes())
        b[1000] ^= 0xFF
        (d / "train.bin").write_bytes(bytes(b))
    elif damage == "truncate":
        (d / "val.bin").write_bytes((d / "val.bin").read_bytes()[:-2])
    elif damage == "meta":
        (d / "meta.json").write_text("{not json")
    elif damage == "tokenizer":
        for t in (cache / "tokenizers").iterdir():
            t.write_text('{"kind": "nonsense"}')
    else:
        (cache / "files.json").write_text("[]garbage")
    again = prepare([str(p)], kind="char", vocab_size=0, val_fraction=0.1)
    train_text, val_text = split_text(p.read_text(encoding="utf-8"), 0.1)
    assert again.train.memmap().tolist() == again.tokenizer.encode(train_text)
    assert again.val.memmap().tolist() == again.tokenizer.encode(val_text)
    if damage in ("flip", "truncate", "meta"):
        assert again.info["rebuilt_damaged"]


def test_bad_files_among_many_fail_with_one_line(tmp_path, cache):
    paths = files_of(tmp_path, n=2)
    (tmp_path / "broken-link.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.raises(LstmTextError, match="cannot read .*broken-link.txt"):
        prepare([str(tmp_path)], kind="char", vocab_size=0, val_fraction=0.1)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1") * 100)
    with pytest.raises(LstmTextError, match="latin1.txt is not valid UTF-8"):
        prepare([str(p) for p in paths] + [str(bad)], kind="char", vocab_size=0, val_fraction=0.1)
    gz = tmp_path / "bad.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(LstmTextError, match="not a readable gzip file"):
        prepare([str(gz)], kind="char", vocab_size=0, val_fraction=0.1)
    assert not list((cache / "tokens").glob(".*.tmp")) if (cache / "tokens").exists() else True


MEMORY_PROBE = r"""
import resource, sys
from lstm_text.data.tokens import prepare
ts = prepare([sys.argv[1]], kind="char", vocab_size=0, val_fraction=0.1)
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(len(ts.train) + len(ts.val), peak // 1024)
"""


def test_a_corpus_larger_than_the_memory_limit_tokenizes(tmp_path):
    """Under a 1 GB address-space limit per process, 200 MB of text tokenizes (the old whole-text path needed
    ~20x the corpus), and peak resident memory does not grow with the corpus: 200 MB costs what 25 MB does."""
    import resource

    block = make_corpus(1 << 20, seed=5).encode()
    limit = 1 << 30

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    peaks = {}
    for mb in (25, 200):
        big = tmp_path / f"big{mb}.txt"
        with open(big, "wb") as f:
            for _ in range(mb):
                f.write(block)
        env = {**os.environ, "LSTM_TEXT_CACHE": str(tmp_path / f"cache{mb}"), "OPENBLAS_NUM_THREADS": "1"}
        r = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(big)], capture_output=True, text=True, env=env, preexec_fn=cap
        )
        assert r.returncode == 0, r.stderr[-2000:]
        n, peaks[mb] = map(int, r.stdout.split())
        assert n == len(block.decode()) * mb
        big.unlink()
    assert peaks[200] < peaks[25] + 64, peaks  # MB


def test_sigterm_while_tokenizing_stops_at_once(tmp_path):
    """A stop signal during tokenizing ends the command within seconds, with one line and no run or cache left."""
    block = make_corpus(1 << 20, seed=6).encode()
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        for _ in range(150):
            f.write(block)
    env = {**os.environ, "LSTM_TEXT_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "lstm_text", "train", str(big), "--out", str(tmp_path / "run"), "--tokenizer", "bpe"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    wait_for_children(p.pid, 2)  # past its imports (a fixed sleep can end before a busy host gets there)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)  # tokenizing 150 MB takes minutes: only stopping ends it within this
    assert p.returncode == 143 and "interrupted while tokenizing" in err, err
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert not [x for x in (tmp_path / "cache").rglob("*") if x.name.endswith(".tmp")]


def test_sigterm_during_validation_saves_and_stops(tmp_path, corpus_file, monkeypatch):
    """Validation polls the stop flag between windows: a signal in the middle of a long validation saves the
    run (resumable) and stops without finishing it."""
    import lstm_text.evaluate as ev
    from lstm_text.checkpoint import read_resume
    from lstm_text.data.batches import eval_windows
    from lstm_text.training.lm import train_lm
    from lstm_text.training.loop import Interrupted

    big = tmp_path / "c.txt"
    big.write_text(make_corpus(1_200_000, seed=2), encoding="utf-8")
    fired, windows = {}, {"done": 0, "total": 0}

    def cb(event, info):
        if event == "step" and info["step"] == 2 and not fired:
            fired["step"] = info["step"]
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()

    def counted_nll(model, ids, quantize="", cancelled=None):  # the windows validated before it stopped
        windows["total"] = sum(1 for _ in eval_windows(ids, ev.EVAL_BATCH, ev.EVAL_SEQ))

        def polled():
            stop = cancelled()
            windows["done"] += not stop
            return stop

        return real_nll(model, ids, quantize, cancelled=polled)

    real_nll = ev.lm_nll
    monkeypatch.setattr(ev, "lm_nll", counted_nll)
    cfg = tiny_train_config(max_steps=50, eval_interval=2, val_fraction=0.5, val_tokens=1_000_000)
    with pytest.raises(Interrupted):  # this validation alone would take about a minute
        train_lm([str(big)], tmp_path / "r", model={"hidden": 256, "layers": 1}, train=cfg, callback=cb)
    assert windows["done"] < windows["total"] // 4, windows  # it stopped within a quarter of the validation
    _, state, _ = read_resume(tmp_path / "r" / "resume.safetensors")
    assert state["loop"]["step"] == 2  # saved where it stopped: --resume continues from there
    assert not (tmp_path / "r" / "metrics.jsonl").exists()  # the cut validation recorded nothing


def test_validation_reads_a_fixed_sample_of_a_big_split(tmp_path, cache):
    from lstm_text.training.lm import train_lm

    p = tmp_path / "c.txt"
    p.write_text(make_corpus(300_000, seed=4), encoding="utf-8")
    cfg = tiny_train_config(max_steps=6, val_fraction=0.3, val_tokens=20_000)
    s = train_lm([str(p)], tmp_path / "r", model=TINY_MODEL, train=cfg)
    assert s["val_sample_tokens"] <= 20_000 and s["val_tokens"] > 80_000
    recs = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["val_bpc"]) for r in recs)


def test_evaluate_without_a_file_measures_the_whole_validation_split(tmp_path, cache):
    """Training validated on a sample; `evaluate RUN` streams the whole split from the token cache."""
    import lstm_text
    from lstm_text.evaluate import lm_metrics
    from lstm_text.training.lm import train_lm

    p = tmp_path / "c.txt"
    p.write_text(make_corpus(200_000, seed=8), encoding="utf-8")
    train_lm([str(p)], tmp_path / "r", model=TINY_MODEL, train=tiny_train_config(max_steps=5, val_tokens=5_000))
    m = lstm_text.load(tmp_path / "r")
    whole = m.evaluate_validation()
    direct = lm_metrics(m.net, m.tokenizer, split_text(p.read_text(encoding="utf-8"), 0.1)[1])
    assert abs(whole["bpc"] - direct["bpc"]) < 1e-6 and whole["characters"] == direct["characters"]
    assert m.info()["training"]["val_sample_tokens"] <= 5_000


def _started(pid: int) -> str | None:
    """A live process's start time (its identity: ids are reused); None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc to find the workers")
@pytest.mark.parametrize("delay", [0.1, pytest.param(0.5, marks=pytest.mark.slow)])  # 0.5: the same, later
def test_sigterm_to_the_process_group_while_hashing_exits_at_once(tmp_path, delay):
    """`timeout`, systemd and Kubernetes signal the whole group: the workers get SIGTERM too, at any moment
    (here while a sparse file is hashed), and the command still ends within seconds, 143, nothing left."""
    big = tmp_path / "sparse.txt"
    with open(big, "wb") as f:
        f.truncate(3 << 30)  # sparse: no disk used, and hashing it outlasts the test
    env = {**os.environ, "LSTM_TEXT_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "lstm_text", "train", str(big), "--out", str(tmp_path / "run"), "--max-steps", "3"]
    p = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, start_new_session=True
    )
    try:
        workers = {w: _started(w) for w in wait_for_children(p.pid, 2)}  # the hashing workers have started
        assert len(workers) >= 2, "no workers started"
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=20)  # hashing 3 GB outlasts this: only stopping ends it within the timeout
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 143 and "interrupted while tokenizing" in err, err
    time.sleep(0.5)  # an orphan is reaped by init
    assert not [w for w, t in workers.items() if _started(w) == t]  # no worker outlives the command
    assert not [x for x in (tmp_path / "cache").rglob("*") if x.name.endswith(".tmp")]


def test_a_killed_runs_temporary_token_folder_is_removed_by_the_next_run(tmp_path, monkeypatch):
    """SIGKILL leaves the folder a build was writing; the next build in the same cache removes it, and keeps
    the folder of a build still running (its lock is held)."""
    import fcntl

    from lstm_text.data import cache, tokens

    monkeypatch.setenv("LSTM_TEXT_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_corpus(20_000), encoding="utf-8")
    folder = tmp_path / "cache" / "tokens"
    folder.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = folder / f".{'a' * 24}.{int(dead.stdout)}.tmp"  # a process that is gone
    stale.mkdir()
    (stale / "train.bin").write_bytes(b"\0" * 4096)
    reused = folder / f".{'b' * 24}.{os.getppid()}.tmp"  # a live process id, but nobody holds the lock
    reused.mkdir()
    (reused / cache.LOCK).write_bytes(b"")
    live = folder / f".{'c' * 24}.{os.getpid()}.tmp"  # a build in progress: its lock is held
    live.mkdir()
    held = open(live / cache.LOCK, "wb")
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        tokens.prepare([str(corpus)], kind="char", vocab_size=0, val_fraction=0.1)
    finally:
        held.close()
    assert not stale.exists() and not reused.exists()
    assert live.exists()
    stale.mkdir()  # a run that hits the cache cleans up too
    again = tokens.prepare([str(corpus)], kind="char", vocab_size=0, val_fraction=0.1)
    assert again.info["cache_hit"] and not stale.exists()


@pytest.mark.parametrize("memo", ["[]", '{"x": null}', "{<path>: <stat>}", "{<path>: [1, 2, 3, null]}", '"text"'])
def test_a_files_json_of_the_wrong_shape_is_rebuilt(tmp_path, monkeypatch, memo):
    """files.json is a cache file like the others: any shape it has, it is rebuilt, not an internal error."""
    import json

    from lstm_text.data import tokens
    from lstm_text.data.cache import file_stat

    cache = tmp_path / "cache"
    monkeypatch.setenv("LSTM_TEXT_CACHE", str(cache))
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_corpus(20_000), encoding="utf-8")
    cache.mkdir()
    stat = json.dumps(file_stat(str(corpus.resolve())))  # the file's own: an entry without a digest
    (cache / "files.json").write_text(memo.replace("<path>", json.dumps(str(corpus.resolve()))).replace("<stat>", stat))
    ts = tokens.prepare([str(corpus)], kind="char", vocab_size=0, val_fraction=0.1)
    again = tokens.prepare([str(corpus)], kind="char", vocab_size=0, val_fraction=0.1)
    assert ts.fingerprint == again.fingerprint and again.info["hashed_bytes"] == 0  # rebuilt, then trusted
    entry = json.loads((cache / "files.json").read_text())[str(corpus.resolve())]
    assert len(entry) == 4 and isinstance(entry[3], str)


@pytest.mark.parametrize("where", ["file", "/dev/null", "read-only", "full"])
def test_a_cache_that_cannot_be_written_gets_one_line(tmp_path, monkeypatch, capsys, where):
    import errno

    from lstm_text.cli import main
    from lstm_text.data.cache import TokenWriter

    if where == "file":
        cache = tmp_path / "cache"
        cache.write_text("not a folder")
    elif where == "/dev/null":
        cache = Path("/dev/null")
    elif where == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        cache = tmp_path / "cache"
        cache.mkdir(mode=0o555)
    if where == "full":
        cache = tmp_path / "cache"

        def full(self, ids):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(TokenWriter, "write", full)
    monkeypatch.setenv("LSTM_TEXT_CACHE", str(cache))
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_corpus(20_000), encoding="utf-8")
    assert main(["train", str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "LSTM_TEXT_CACHE" in err and "internal error" not in err, err
    assert not [x for x in tmp_path.rglob("*") if x.name.endswith(".tmp")]

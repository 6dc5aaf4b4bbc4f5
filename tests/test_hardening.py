"""Faults from outside the happy path: signals to a whole process group, what a killed run leaves in the
cache, special files, a cache that cannot be written, non-finite options, hostile text on a terminal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_corpus, wait_for_children


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

    from lstm_text.data import tokens

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
    (reused / tokens.LOCK).write_bytes(b"")
    live = folder / f".{'c' * 24}.{os.getpid()}.tmp"  # a build in progress: its lock is held
    live.mkdir()
    held = open(live / tokens.LOCK, "wb")
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


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("temperature", float("inf"), "--temperature must be a finite number"),
        ("temperature", 1e39, "--temperature must be in [0.001, 1000]"),
        ("temperature", 1e-39, "--temperature must be in [0.001, 1000]"),
        ("top_p", 1e-46, "--top-p must be in [1e-06, 1]"),
        ("top_p", float("nan"), "--top-p must be a finite number"),
        ("repetition_penalty", 1e-39, "--repetition-penalty must be in [0.001, 1000]"),
    ],
)
def test_sampling_options_that_would_give_nan_probabilities_are_refused(tiny_run, option, value, says):
    """Values that pass `> 0` but overflow float32 logits are refused where the option is defined: Python..."""
    import lstm_text
    from lstm_text.errors import LstmTextError

    with pytest.raises(LstmTextError, match=re.escape(says)):
        lstm_text.load(tiny_run).generate("a", max_tokens=2, **{option: value})


@pytest.mark.parametrize(
    "flag, value", [("--temperature", "inf"), ("--top-p", "1e-46"), ("--repetition-penalty", "1e-39")]
)
def test_cli_refuses_sampling_options_out_of_range(tiny_run, capsys, flag, value):
    """...and the command line: one line naming the flag, exit 1, nothing on stdout."""
    from lstm_text.cli import main

    assert main(["generate", str(tiny_run), "a", flag, value, "--max-tokens", "3"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and flag in err and "internal error" not in err


def test_a_save_that_fails_half_way_leaves_model_resume_and_metrics_consistent(tmp_path, corpus_file, monkeypatch):
    """No space left while writing the resume state, after the best model and the metric line were written:
    --resume goes on from the resume state, and the model file and metrics.jsonl agree with it (no step
    twice, no model from a step the resumed run trains again)."""
    import errno
    import json

    from lstm_text.checkpoint import read_model
    from lstm_text.training import loop
    from lstm_text.training.lm import train_lm

    from conftest import TINY_MODEL, tiny_train_config

    monkeypatch.setenv("LSTM_TEXT_CACHE", str(tmp_path / "cache"))
    real = loop.write_resume

    def full_disk(path, *a, state, **kw):
        if state["loop"]["step"] == 8:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *a, state=state, **kw)

    out = tmp_path / "run"
    cfg = tiny_train_config(max_steps=12, eval_interval=4, lr=3e-3)
    monkeypatch.setattr(loop, "write_resume", full_disk)
    with pytest.raises(OSError):
        train_lm([str(corpus_file)], out, model=TINY_MODEL, train=cfg)
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 8]  # the model (best at 8) and the metrics went ahead of the resume state (4)
    monkeypatch.setattr(loop, "write_resume", real)
    train_lm([], out, model={}, train=cfg, resume=True)
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 8, 12]
    best = read_model(out).meta["training"]["best_step"]
    recs = {r["step"]: r["val_bpc"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}
    assert recs[best] == min(recs.values())
    assert not list(out.glob(".*"))


@pytest.mark.parametrize("command", ["train", "train-classifier"])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_special_files_are_refused_by_type(tmp_path, capsys, command, special):
    """A FIFO as corpus blocked for ever in open(); /dev/zero read as "empty" (size 0) or without end."""
    from lstm_text.cli import main

    path = special
    if special == "fifo":
        path = str(tmp_path / "pipe")
        os.mkfifo(path)
    assert main([command, path, "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert f"{path} is a {'FIFO' if special == 'fifo' else 'device'}, not a text file" in err, err


@pytest.mark.parametrize("memo", ["[]", '{"x": null}', "{<path>: <stat>}", "{<path>: [1, 2, 3, null]}", '"text"'])
def test_a_files_json_of_the_wrong_shape_is_rebuilt(tmp_path, monkeypatch, memo):
    """files.json is a cache file like the others: any shape it has, it is rebuilt, not an internal error."""
    import json

    from lstm_text.data import tokens

    cache = tmp_path / "cache"
    monkeypatch.setenv("LSTM_TEXT_CACHE", str(cache))
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_corpus(20_000), encoding="utf-8")
    cache.mkdir()
    stat = json.dumps(tokens._stat(str(corpus.resolve())))  # the file's own: an entry without a digest
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
    from lstm_text.data import tokens

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

        monkeypatch.setattr(tokens._Writer, "write", full)
    monkeypatch.setenv("LSTM_TEXT_CACHE", str(cache))
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_corpus(20_000), encoding="utf-8")
    assert main(["train", str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "LSTM_TEXT_CACHE" in err and "internal error" not in err, err
    assert not [x for x in tmp_path.rglob("*") if x.name.endswith(".tmp")]


def test_no_space_left_while_saving_is_one_line(tmp_path, monkeypatch, capsys, corpus_file):
    """The device fills while the model is saved: one line naming the file, exit 1, not an internal error."""
    import errno

    from lstm_text import checkpoint
    from lstm_text.cli import main

    monkeypatch.setenv("LSTM_TEXT_CACHE", str(tmp_path / "cache"))

    out = tmp_path / "run"
    fsync = os.fsync

    def full(fd):  # the run directory's device is full; the cache's is not
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(out)):
            raise OSError(errno.ENOSPC, "No space left on device")
        fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", full)
    assert (
        main(["train", str(corpus_file), "--out", str(out), "--max-steps", "2", "--hidden", "8", "--layers", "1"]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: No space left on device: ") and str(out) in err, err
    assert not list(out.glob(".*.tmp"))


def _on_a_terminal(args: list[str], cwd: Path) -> str:
    """What `lstm-text ARGS` writes with its stdout on a pseudo-terminal (as a user would see it)."""
    import pty

    main_fd, sub_fd = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "lstm_text", *args], stdout=sub_fd, stderr=subprocess.PIPE, cwd=cwd)
    os.close(sub_fd)
    out = b""
    while True:
        try:
            b = os.read(main_fd, 65536)
        except OSError:  # the other side closed
            break
        if not b:
            break
        out += b
    p.wait(timeout=60)
    os.close(main_fd)
    assert p.returncode == 0, p.stderr.read()
    return out.decode("utf-8", "replace")


@pytest.mark.parametrize("explain", [["--explain"], []])
def test_control_characters_of_the_input_are_shown_not_obeyed_on_a_terminal(tmp_path, explain):
    """`ESC]0;` would set the window title and `ESC[2J` clear the screen: on a terminal they appear as escapes;
    piped output keeps the text as it came."""
    f = tmp_path / "in.txt"
    f.write_text("a great \x1b]0;owned\x07 movie \x1b[2J\n", encoding="utf-8")
    out = _on_a_terminal(["classify", str(f), *explain], tmp_path)
    assert "\x1b]0;" not in out and "\x1b[2J" not in out and "\x07" not in out, repr(out)
    assert "\\x1b]0;" in out and "\\x1b[2J" in out, repr(out)
    piped = subprocess.run(
        [sys.executable, "-m", "lstm_text", "classify", str(f), *explain], capture_output=True, text=True, cwd=tmp_path
    )
    assert "\x1b]0;owned\x07" in piped.stdout


def test_a_label_set_too_large_is_refused_before_training(tmp_path, capsys):
    """10,000 labels made a 10,000 x 10,000 confusion matrix per validation (3 GB for 20,000 rows), and the
    out-of-memory message blamed the batch size."""
    from lstm_text.cli import main

    f = tmp_path / "many.tsv"
    f.write_text("label\ttext\n" + "".join(f"id{i}\tsome text {i}\n" for i in range(1001)), encoding="utf-8")
    assert main(["train-classifier", str(f), "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "1,001 labels in the training data" in err and "at most 1,000" in err, err
    assert not (tmp_path / "run" / "model.safetensors").exists()

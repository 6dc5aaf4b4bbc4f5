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
@pytest.mark.parametrize("delay", [0.1, 0.5])
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
        t = time.monotonic()
        os.killpg(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert time.monotonic() - t < 10, "took too long to stop"
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

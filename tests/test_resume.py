"""Interrupted runs and --resume: what a signal saves, what --resume may change, and what it says."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from lstm_text.checkpoint import load_model
from lstm_text.cli import main

from conftest import TINY_MODEL, tiny_train_config


def test_plain_progress_has_tokens_per_second_and_eta_and_resume_says_where(tmp_path, pro_con, capsys, monkeypatch):
    import os
    import signal

    from lstm_text.ui import TrainProgress

    out = tmp_path / "r"
    args = ["train-classifier", str(pro_con), "--out", str(out), "--epochs", "4", "--vocab-size", "60"]
    args += ["--hidden", "8", "--embed", "8", "--batch-size", "8", "--tokenizer", "word"]
    real = TrainProgress.__call__

    def stop_at_10(self, event, info):  # a Ctrl-C mid-run
        real(self, event, info)
        if event == "step" and info["step"] == 10:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TrainProgress, "__call__", stop_at_10)
    assert main(args) == 130
    err = capsys.readouterr().err
    evals = [x for x in err.splitlines() if x.startswith("step ")]
    assert evals and all(" tok/s" in x and " eta " in x for x in evals), err
    monkeypatch.setattr(TrainProgress, "__call__", real)
    assert main(["train-classifier", "--out", str(out), "--resume"]) == 0
    assert re.search(r"^resuming at step 10 of \d+$", capsys.readouterr().err, re.M)


def test_resume_applies_new_stopping_rules_and_says_what_stops_it(tmp_path, corpus_file, capsys):
    out = tmp_path / "r"
    base = ["train", str(corpus_file), "--out", str(out), "--layers", "1", "--hidden", "16", "--embed", "8"]
    base += ["--batch-size", "4", "--seq-len", "16", "--val-tokens", "1000", "-q"]
    assert main([*base, "--max-steps", "6", "--time-budget", "600"]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--max-steps", "10"]) == 0
    err = capsys.readouterr().err
    assert "resuming at step 6 of 10\n" in err  # the old time budget is replaced, so nothing else stops it
    import lstm_text

    assert lstm_text.load(out).info()["training"]["steps"] == 10
    assert main(["train", "--out", str(out), "--resume", "--time-budget", "900", "-q", "--max-steps", "12"]) == 0


def test_the_resuming_line_names_every_rule_that_can_stop_the_run():
    from lstm_text.ui import resuming_line

    assert resuming_line({"start_step": 25, "total_steps": 300, "time_budget": 0}) == "resuming at step 25 of 300"
    both = {"start_step": 25, "total_steps": 300, "time_budget": 60.0, "wall": 42.4}
    assert resuming_line(both) == "resuming at step 25 of 300, or until 60 s of --time-budget (42 s spent)"
    timed = {"start_step": 25, "total_steps": None, "time_budget": 60.0, "wall": 42.4}
    assert resuming_line(timed) == "resuming at step 25, until 60 s of --time-budget (42 s spent)"


def test_resume_refuses_a_new_model_shape_with_a_clear_error(tmp_path, corpus_file, capsys):
    from lstm_text.training.lm import train_lm

    out = tmp_path / "r"
    train_lm([str(corpus_file)], out, model=TINY_MODEL, train=tiny_train_config(max_steps=4))
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--hidden", "192", "--max-steps", "8"]) == 1
    err = capsys.readouterr().err
    assert "--resume cannot change --hidden (the run's 32, given 192)" in err and "--overwrite" in err
    assert main(["train", "--out", str(out), "--resume", "--lr", "0.5"]) == 1
    assert "--resume cannot change --lr" in capsys.readouterr().err


def test_a_run_interrupted_before_its_first_save_says_so_and_how_to_resume(tmp_path, corpus_file, capsys):
    from lstm_text.errors import LstmTextError
    from lstm_text.training.lm import train_lm

    out = tmp_path / "cut"

    def stop(event, info):
        if event == "step" and info["step"] == 2:  # before the first validation
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(LstmTextError, match="interrupted at step 2"):
        train_lm([str(corpus_file)], out, model=TINY_MODEL, train=tiny_train_config(), callback=stop)
    assert not (out / "model.safetensors").exists()
    assert main(["generate", str(out), "x", "--max-tokens", "3"]) == 1
    err = capsys.readouterr().err
    assert f"the run in {out} was interrupted before its first save" in err
    assert f"continue its training with --out {out} --resume" in err


def test_a_finished_run_says_how_to_drop_its_resume_state_or_drops_it_when_asked(tmp_path, corpus_file, capsys):
    """A finished run can still be extended (--resume with a new limit), so its resume state stays by default;
    the closing table says what the file is for and how to drop it, and --no-keep-resume removes it."""
    args = ["train", str(corpus_file), "--max-steps", "3", "--hidden", "8", "--embed", "8", "--val-tokens", "1000"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = " ".join(capsys.readouterr().err.replace("\u2502", " ").split())  # the closing table cells, unwrapped
    assert (tmp_path / "a" / "resume.safetensors").is_file()
    assert "--resume extends the run; delete it, or train with --no-keep-resume, if you will not" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--no-keep-resume"]) == 0
    assert (tmp_path / "b" / "model.safetensors").is_file() and not (tmp_path / "b" / "resume.safetensors").exists()
    assert "resume state" not in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "b"), "--resume", "--max-steps", "8"]) == 1
    assert "finished and its resume.safetensors was removed (--keep-resume off)" in capsys.readouterr().err


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


def _train_cmd(corpus_file, out, *extra) -> list[str]:
    """A tiny, endless training run in a subprocess, for the tests that interrupt or kill it."""
    return [
        sys.executable,
        "-m",
        "lstm_text",
        "train",
        str(corpus_file),
        "--out",
        str(out),
        "--max-steps",
        "100000",
        "--layers",
        "1",
        "--hidden",
        "16",
        "--embed",
        "8",
        "--batch-size",
        "4",
        "--seq-len",
        "16",
        *extra,
    ]


# SIGTERM: slow (two CLI runs in subprocesses, ~50 s on busy cores); its exit and save are in the fast suite
# through test_tokens.py's SIGTERM tests
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)])
def test_a_signal_saves_and_resume_finishes(tmp_path, corpus_file, sig, code):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = _train_cmd(corpus_file, out, "--eval-interval", "20")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted at step") and "--resume" in last and "Traceback" not in err
    assert (out / "resume.safetensors").is_file() and (out / "model.safetensors").is_file()
    stopped = int(last.split("at step ")[1].split(";")[0])  # tiny steps: it may be well past the first save
    target = str(stopped + 20)
    r = subprocess.run(
        [sys.executable, "-m", "lstm_text", "train", "--out", str(out), "--resume", "--max-steps", target, "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert load_model(out)[2]["training"]["steps"] == int(target)


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_a_loadable_run(tmp_path, corpus_file):
    """Kill training (SIGKILL) at several moments while it checkpoints every few steps: what is there loads."""
    from safetensors.torch import load_file

    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    base = _train_cmd(corpus_file, out, "--eval-interval", "3", "--quiet")
    lost = 0
    for i, delay in enumerate([0.05, 0.2, 0.35, 0.5, 0.8]):
        cmd = base if i == 0 else [*base[:4], "--out", str(out), "--resume", "--max-steps", "100000", "--quiet"]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 60
        while not (out / "resume.safetensors").exists() and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        p.kill()
        p.wait()
        try:
            load_model(out)
            load_file(out / "resume.safetensors")
        except Exception:
            lost += 1
    assert lost == 0

"""Never lose work, never run hostile code: interruption, divergence and malicious model files."""

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from lstm_text.checkpoint import load_model
from lstm_text.errors import LstmTextError
from lstm_text.model import LSTMModel
from lstm_text.training.lm import train_lm

from conftest import TINY_MODEL, tiny_train_config


def _nan_on_calls(monkeypatch, bad_calls):
    real = LSTMModel.forward
    calls = {"n": 0}

    def forward(self, idx, targets=None, state=None, mask=None):
        logits, loss, st = real(self, idx, targets, state, mask)
        if targets is not None and self.training:
            calls["n"] += 1
            if calls["n"] in bad_calls or "all" in bad_calls:
                loss = loss * float("nan")
        return logits, loss, st

    monkeypatch.setattr(LSTMModel, "forward", forward)


def test_a_nan_loss_is_skipped_and_never_saved(tmp_path, corpus_file, monkeypatch):
    _nan_on_calls(monkeypatch, {3, 4})
    warnings = []
    train_lm(
        [str(corpus_file)],
        tmp_path / "r",
        model=TINY_MODEL,
        train=tiny_train_config(max_steps=12),
        callback=lambda e, i: warnings.append(i["message"]) if e == "warning" else None,
    )
    assert len(warnings) == 2 and "non-finite" in warnings[0]
    model, _, _ = load_model(tmp_path / "r")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_divergence_stops_with_a_clear_message(tmp_path, corpus_file, monkeypatch):
    _nan_on_calls(monkeypatch, {"all"})
    with pytest.raises(LstmTextError, match="training diverged"):
        train_lm([str(corpus_file)], tmp_path / "r", model=TINY_MODEL, train=tiny_train_config(max_steps=30))


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


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['PAYLOAD_MARK']}",))


def test_pickle_payloads_are_refused_and_never_run(tmp_path, tiny_run, monkeypatch, capsys):
    from lstm_text.cli import main

    mark = tmp_path / "pwned"
    monkeypatch.setenv("PAYLOAD_MARK", str(mark))
    blob = pickle.dumps({"weights": Payload()})
    hostile = [tmp_path / "model.pt", tmp_path / "model.safetensors", tmp_path / "model.bin"]
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(blob)
    for p in hostile:
        p.write_bytes(blob)
    # a torch.save zip (pickle inside) renamed to the expected file name
    zipped = tmp_path / "zipped" / "model.safetensors"
    zipped.parent.mkdir()
    torch.save({"x": Payload()}, zipped)
    resumable = tmp_path / "resumable"  # a run directory whose resume state carries the payload
    resumable.mkdir()
    (resumable / "resume.safetensors").write_bytes(blob)
    assert main(["train", "--out", str(resumable), "--resume"]) == 1
    assert "damaged" in capsys.readouterr().err
    for target in [*hostile, run, zipped.parent]:
        for cmd in (["generate", str(target), "x"], ["info", str(target)], ["classify", "--model", str(target)]):
            assert main(cmd) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and ("not an lstm-text model" in err[0] or "damaged" in err[0]), err
    assert not mark.exists()


def test_tampered_and_truncated_model_files(tmp_path, tiny_run, capsys):
    from safetensors.torch import load_file, save_file

    from lstm_text.cli import main

    good = (tiny_run / "model.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(good[: len(good) // 2])
    tensors = load_file(tiny_run / "model.safetensors")
    meta = __import__("safetensors").safe_open(tiny_run / "model.safetensors", "pt").metadata()
    tensors["embed.weight"] = tensors["embed.weight"][:-1]
    save_file(tensors, tmp_path / "shape.safetensors", metadata=meta)
    save_file(
        load_file(tiny_run / "model.safetensors"),
        tmp_path / "newer.safetensors",
        metadata={**meta, "format_version": "99"},
    )
    save_file(load_file(tiny_run / "model.safetensors"), tmp_path / "nometa.safetensors")
    cases = {
        "trunc": "damaged",
        "shape": "do not match",
        "newer": "newer than this lstm-text",
        "nometa": "not an lstm-text model",
    }
    for name, fragment in cases.items():
        assert main(["info", str(tmp_path / f"{name}.safetensors")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], (name, err)


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

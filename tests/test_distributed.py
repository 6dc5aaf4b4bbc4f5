"""Data-parallel training under torchrun (gloo on loopback): N processes with batch b train the same model
as one process with batch N*b, rank 0 alone writes, and a run resumes with another number of processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import labelled, make_corpus

TOLERANCE = 2e-3  # relative, on val bpc and train loss: the ranks' float sums differ from one process's


def run(args: list[str], procs: int, cache, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "LSTM_TEXT_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    if procs == 1:
        cmd = [sys.executable, "-m", "lstm_text", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
        cmd += ["-m", "lstm_text", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def curve(run_dir) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * abs(b)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("ddp") / "c.txt"
    p.write_text(make_corpus(60_000, seed=7), encoding="utf-8")
    return p


LM = ["--layers", "1", "--hidden", "32", "--embed", "16", "--seq-len", "32", "--lr", "0.01", "--seed", "0"]


def test_two_processes_follow_one_process_with_the_doubled_batch_and_resume_on_one(tmp_path, corpus):
    cache = tmp_path / "cache"
    one, two = tmp_path / "one", tmp_path / "two"
    common = [str(corpus), "--max-steps", "8", "--eval-interval", "4", "--quiet", *LM]
    run(["train", "--out", str(one), "--batch-size", "8", *common], 1, cache)
    run(["train", "--out", str(two), "--batch-size", "4", *common], 2, cache)
    a, b = curve(one), curve(two)
    assert [r["step"] for r in b] == [4, 8]
    for x, y in zip(a, b):  # the same loss curve, step for step
        assert close(y["val_bpc"], x["val_bpc"]) and close(y["train_loss"], x["train_loss"]), (x, y)
    # both continue on 1 process (the 2-process run's 8 rows now all here): still the same curve
    for d in (one, two):
        run(["train", "--out", str(d), "--resume", "--max-steps", "16", "--eval-interval", "4", "--quiet"], 1, cache)
    a, b = curve(one), curve(two)
    assert [r["step"] for r in b] == [4, 8, 12, 16]
    for x, y in zip(a, b):
        assert close(y["val_bpc"], x["val_bpc"]) and close(y["train_loss"], x["train_loss"]), (x, y)
    gen = run(["generate", str(two), "the", "--max-tokens", "20", "--seed", "1"], 1, cache)
    assert gen.stdout.startswith("the")


@pytest.mark.slow
def test_one_process_run_resumes_on_two_and_the_classifier_trains_on_two(tmp_path, corpus):
    cache = tmp_path / "cache"
    one = tmp_path / "one"
    run(["train", str(corpus), "--out", str(one), "--batch-size", "8", "--max-steps", "8", "--quiet", *LM], 1, cache)
    run(["train", "--out", str(one), "--resume", "--max-steps", "12", "--quiet"], 2, cache)
    assert curve(one)[-1]["step"] == 12
    odd = tmp_path / "odd"
    run(["train", str(corpus), "--out", str(odd), "--batch-size", "3", "--max-steps", "4", "--quiet", *LM], 1, cache)
    env = {**os.environ, "LSTM_TEXT_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "lstm_text",
         "train", "--out", str(odd), "--resume", "--max-steps", "6", "--quiet"],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    assert r.returncode != 0 and "does not split evenly among 2 processes" in r.stderr
    data = tmp_path / "train.tsv"
    data.write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(800, 0)), encoding="utf-8")
    acc = {}
    for procs, batch in ((1, "16"), (2, "8")):
        clf = tmp_path / f"clf{procs}"
        run(["train-classifier", str(data), "--out", str(clf), "--epochs", "4", "--batch-size", batch, "--quiet"],
            procs, cache)  # fmt: skip
        acc[procs] = json.loads(run(["info", str(clf), "--json"], 1, cache).stdout)["training"]["dev_accuracy"]
    assert acc[2] > 0.75 and abs(acc[2] - acc[1]) < 0.1, acc  # dropout masks differ by rank: close, not equal


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_through_the_same_code(tmp_path, corpus, precision, monkeypatch):
    """The GPU path (autocast, fp16's gradient scaler) exercised on the CPU: the run trains, its loss falls and
    the saved weights are float32."""
    import lstm_text.training.runtime as runtime
    from lstm_text.checkpoint import load_model
    from lstm_text.training.lm import train_lm

    from conftest import TINY_MODEL, tiny_train_config

    monkeypatch.setenv("LSTM_TEXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "resolve_precision", lambda name, device: name)  # as on a GPU
    cfg = tiny_train_config(max_steps=30, eval_interval=10, precision=precision)
    with torch.backends.mkldnn.flags(enabled=False):  # oneDNN has no reduced-precision LSTM on this CPU
        s = train_lm([str(corpus)], tmp_path / "r", model=TINY_MODEL, train=cfg)
    recs = curve(tmp_path / "r")
    assert recs[-1]["val_bpc"] < recs[0]["val_bpc"] and s["steps"] == 30
    model, _, _ = load_model(tmp_path / "r" / "model.safetensors")
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_runtime_reads_torchrun_environment(monkeypatch):
    from lstm_text.device import resolve_precision
    from lstm_text.errors import LstmTextError
    from lstm_text.training.runtime import Runtime

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rt = Runtime.from_env("cpu", "auto")
    assert (rt.rank, rt.world_size, rt.device, rt.precision, rt.is_main) == (0, 1, "cpu", "fp32", True)
    assert resolve_precision("bf16", "cuda:0") == "bf16"
    with pytest.raises(LstmTextError, match="precision bf16 is for CUDA GPUs"):
        resolve_precision("bf16", "cpu")
    with pytest.raises(LstmTextError, match="precision must be one of"):
        resolve_precision("fp8", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(LstmTextError, match="device cuda: .*(CPU-only build|sees no GPU)"):
            Runtime.from_env("cuda")

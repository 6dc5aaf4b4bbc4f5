"""ONNX export (lstm_text.export) checked by onnxruntime, and the examples that run it without torch.

Skipped where the ``export`` extra (onnx, onnxruntime) is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY_MODEL, labelled, tiny_train_config

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from lstm_text.cli import app  # noqa: E402

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROMPTS = ["the king ", "", "of love and sorrow ;"]


def _example(name: str):
    """An example script as a module (they import only onnxruntime, NumPy and their tokenizer beside them)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bpe_run(tmp_path_factory, corpus_file):
    from lstm_text.training.lm import train_lm

    out = tmp_path_factory.mktemp("runs") / "bpe"
    train_lm([str(corpus_file)], out, model=TINY_MODEL, train=tiny_train_config(tokenizer="bpe", vocab_size=300))
    return out


@pytest.fixture(scope="module")
def clf_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clf")
    (d / "train.tsv").write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(300, 0)))
    dev = labelled(60, 1)
    (d / "dev.tsv").write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in dev))
    # the dev texts, raw: capitals and clitics go through the normaliser, an empty line has no label
    lines = [b.capitalize() + ("!" if i % 3 == 0 else "") for i, (_, b) in enumerate(dev)] + ["", "Isn't it GREAT?"]
    (d / "dev.txt").write_text("\n".join(lines) + "\n")
    return d


@pytest.fixture(scope="module")
def clf_run(tmp_path_factory, clf_files):
    """A tiny bidirectional classifier over a normalising unigram tokenizer (the classifier defaults)."""
    out = tmp_path_factory.mktemp("clf") / "run"
    args = ["train-classifier", str(clf_files / "train.tsv"), "--dev", str(clf_files / "dev.tsv"), "--out", str(out)]
    r = runner.invoke(app, [*args, "--epochs", "2", "--hidden", "16", "--embed", "16", "--vocab-size", "320"])
    assert r.exit_code == 0, r.output
    return out


def _export(model, out: Path, *extra: str) -> dict:
    r = runner.invoke(app, ["export", str(model), "-o", str(out), "--json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.parametrize("run", ["tiny_run", "bpe_run"])
def test_lm_logits_match_torch_prefill_then_steps(request, tmp_path, run):
    """A batch of prompts, half read at once and the rest one token per step with the state fed back."""
    manifest = _export(request.getfixturevalue(run), tmp_path / "x")
    assert manifest["check"]["lm_logits"] < 1e-4
    g = manifest["graphs"]["lm.onnx"]
    assert [i["name"] for i in g["inputs"]] == ["input_ids", "state_h", "state_c"]
    assert g["inputs"][0]["shape"] == ["batch", "length"]
    assert g["outputs"][1]["shape"] == [TINY_MODEL["layers"], "batch", TINY_MODEL["hidden"]]


@pytest.mark.parametrize("run", ["tiny_run", "bpe_run"])
def test_greedy_200_tokens_identical_to_generate(request, tmp_path, run):
    from lstm_text.cli import main

    path = request.getfixturevalue(run)
    _export(path, tmp_path / "x", "--no-check")
    gen = _example("onnx_generate")
    for prompt in PROMPTS:
        r = runner.invoke(app, ["generate", str(path), prompt, "--greedy", "--max-tokens", "200"])
        assert r.exit_code == 0, r.output
        assert r.stdout == prompt + gen.generate(tmp_path / "x", prompt, 200) + "\n"
    assert main(["generate", str(path), "x", "--max-tokens", "1", "--greedy"]) == 0


def test_classifier_probs_match_classify_on_dev_file(clf_run, clf_files, tmp_path):
    manifest = _export(clf_run, tmp_path / "x")
    assert manifest["check"]["classifier_probs"] < 1e-5
    g = manifest["graphs"]["classifier.onnx"]
    assert [i["name"] for i in g["inputs"]] == ["input_ids", "lengths"]
    assert (tmp_path / "x" / "tokenizer.model").is_file() and (tmp_path / "x" / "normalize.py").is_file()
    r = runner.invoke(app, ["classify", "-m", str(clf_run), "-f", "jsonl", str(clf_files / "dev.txt")])
    assert r.exit_code == 0, r.output
    ref = [json.loads(line) for line in r.stdout.splitlines()]
    lines = (clf_files / "dev.txt").read_text().split("\n")[:-1]
    got = _example("onnx_classify").classify(tmp_path / "x", lines)
    assert len(got) == len(ref) == 62
    for g, want in zip(got, ref):
        if want["label"] is None:
            assert g is None
        else:
            assert g[0] == want["label"] and abs(g[1] - want["score"]) < 1e-5


@pytest.mark.parametrize("name", ["sentiment", "sentiment3"])
def test_builtin_classifier_probs_match(tmp_path, name):
    """The built-in classifiers (word tokenizer, normalisation v1) on lines of SST-2 dev style and raw text."""
    import numpy as np

    import lstm_text
    from lstm_text.export import check
    from lstm_text.infer.classifier import read_probs, result

    m = lstm_text.load(name)
    m.export(tmp_path / "x", check=False)
    assert check(m, tmp_path / "x", batch=8, length=64)["classifier_probs"] < 1e-5
    lines = ["I didn't like it AT ALL!!!", "a gorgeous , witty , seductive movie .", "😍 loved it", "", "meh"]
    got = _example("onnx_classify").classify(tmp_path / "x", lines)
    _, probs = read_probs(m.classifier, m.tokenizer, lines)  # the model alone: an export holds no companion
    for g, want in zip(got, (result(m.labels, p) for p in probs)):
        assert (g is None) == (want["label"] is None)
        if g is not None:
            assert g[0] == want["label"] and np.isclose(g[1], want["score"], atol=1e-5)


def _venv_without_torch(tmp_path: Path) -> Path:
    """A virtual environment holding onnxruntime and NumPy only (linked from this one): no torch, no lstm-text."""
    import numpy
    import onnxruntime

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    for mod in (numpy, onnxruntime):
        src = Path(mod.__file__).parent
        (site / src.name).symlink_to(src)
        libs = src.with_name(src.name + ".libs")  # the shared libraries of a manylinux wheel
        if libs.is_dir():
            (site / libs.name).symlink_to(libs)
    python = venv / "bin" / "python"
    for absent in ("torch", "lstm_text"):
        assert subprocess.run([python, "-c", f"import {absent}"], capture_output=True, cwd=tmp_path).returncode != 0
    return python


def test_examples_run_in_a_venv_without_torch(tiny_run, clf_run, clf_files, tmp_path):
    from lstm_text.cli import main  # noqa: F401  (the CLI runs here, the examples there)

    python = _venv_without_torch(tmp_path)
    _export(tiny_run, tmp_path / "lm", "--no-check")
    _export(clf_run, tmp_path / "clf", "--no-check")
    r = runner.invoke(app, ["generate", str(tiny_run), "the king ", "--greedy", "--max-tokens", "200"])
    g = subprocess.run(
        [python, EXAMPLES / "onnx_generate.py", tmp_path / "lm", "the king ", "--max-tokens", "200"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert g.returncode == 0, g.stderr
    assert r.stdout == "the king " + g.stdout
    # a word or SentencePiece tokenizer needs its package: the char LM and, here, a word classifier
    _export("sentiment", tmp_path / "sent", "--no-check")
    dev = (clf_files / "dev.txt").read_text(encoding="utf-8")
    c = subprocess.run(
        [python, EXAMPLES / "onnx_classify.py", tmp_path / "sent"],
        input=dev,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert c.returncode == 0, c.stderr
    r = runner.invoke(app, ["classify", "-m", "sentiment", "-f", "jsonl"], input=dev)
    ref = [json.loads(line) for line in r.stdout.splitlines()]
    got = [line.split("\t") for line in c.stdout.splitlines()]
    assert len(got) == len(ref) == 62
    for (label, score), want in zip(got, ref):
        assert label == (want["label"] or "-")
        assert score == "-" if want["score"] is None else abs(float(score) - want["score"]) < 1e-5


def test_int8_export_is_smaller_and_close(tiny_run, clf_run, tmp_path):
    full = _export(clf_run, tmp_path / "f32", "--no-check")
    q = _export(clf_run, tmp_path / "int8", "--quantize", "int8")
    assert q["quantize"] == "int8" and full["quantize"] == ""
    assert q["check"]["classifier_probs"] < 0.1  # int8 weights move the probabilities a little, not the answer
    size = {d: (tmp_path / d / "classifier.onnx").stat().st_size for d in ("f32", "int8")}
    assert size["int8"] < size["f32"]
    lm = _export(tiny_run, tmp_path / "lm8", "--quantize", "int8")
    assert 0 < lm["check"]["lm_logits"] < 1.0


def test_export_replaces_an_earlier_export_and_refuses_other_folders(tiny_run, tmp_path):
    from lstm_text.cli import main

    out = tmp_path / "x"
    _export(tiny_run, out, "--no-check")
    (out / "stale.onnx").write_bytes(b"old")
    _export(tiny_run, out, "--no-check")
    assert not (out / "stale.onnx").exists() and (out / "lm.onnx").is_file()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["export", str(tiny_run), "-o", str(other)]) == 1
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    assert main(["export", str(tiny_run), "-o", str(tmp_path / "y"), "--format", "tflite"]) == 2
    assert main(["export", str(tmp_path / "missing"), "-o", str(tmp_path / "y")]) == 1
    assert not (tmp_path / "y").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_missing_extra_is_one_clear_error(tiny_run, tmp_path, monkeypatch, capsys):
    from lstm_text.cli import main

    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(tiny_run), "-o", str(tmp_path / "x")]) == 1
    assert "pip install 'lstm-text[export]'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

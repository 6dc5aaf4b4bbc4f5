import json

import pytest
from typer.testing import CliRunner

from lstm_text.cli import app, main

runner = CliRunner()


def test_cli_chain_train_generate_evaluate_info(tmp_path, corpus_file):
    run = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            str(corpus_file),
            "--out",
            str(run),
            "--max-steps",
            "8",
            "--layers",
            "1",
            "--hidden",
            "24",
            "--embed",
            "16",
            "--batch-size",
            "4",
            "--seq-len",
            "16",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    g1 = runner.invoke(app, ["generate", str(run), "the", "--max-tokens", "30", "--seed", "3"])
    g2 = runner.invoke(app, ["generate", str(run), "the", "--max-tokens", "30", "--seed", "3"])
    assert g1.exit_code == 0 and g1.stdout == g2.stdout and g1.stdout.startswith("the")
    e = runner.invoke(app, ["evaluate", str(run), str(corpus_file), "--json"])
    assert e.exit_code == 0
    d = json.loads(e.stdout)
    assert d["bpc"] > 0 and d["characters"] == len(corpus_file.read_text(encoding="utf-8"))
    i = runner.invoke(app, ["info", str(run), "--json"])
    assert i.exit_code == 0 and json.loads(i.stdout)["heads"] == ["language model"]
    assert runner.invoke(app, ["info", str(run)]).exit_code == 0


def test_generate_reads_the_prompt_from_stdin(tiny_run):
    r = runner.invoke(app, ["generate", str(tiny_run), "-", "--max-tokens", "5", "--seed", "1"], input="the ")
    assert r.exit_code == 0 and r.stdout.startswith("the ")


@pytest.mark.slow
def test_console_script_runs(tiny_run):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "lstm_text", "generate", str(tiny_run), "the", "--max-tokens", "5", "--seed", "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert r.stdout.startswith("the")


def test_bench_quick_reports_ratios():
    r = runner.invoke(app, ["bench", "--quick", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["gemm_gflops"] > 0 and 0 < d["train"]["share_of_gemm"]
    assert all(
        g["tokens_per_s"] > 0 and g["int8_tokens_per_s"] > 0 and g["bound_tokens_per_s"] > 0 for g in d["generate"]
    )
    c = d["classify"]  # the built-in model: in-process fp32 and int8, and whole `lstm-text classify` processes
    assert c["lines_per_s"] > 0 and c["int8_lines_per_s"] > 0 and c["cli_lines_per_s"] > 0 and c["cli_one_line_s"] > 0


def test_version(capsys):
    import lstm_text

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"lstm-text {lstm_text.__version__}"


def test_train_help_shows_the_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for option, default in [("--hidden", "512"), ("--tokenizer", "char"), ("--seq-len", "64"), ("--lr", "0.01")]:
        line = next(x for x in text.splitlines() if f" {option} " in x)
        assert f"[default: {default}]" in line, line


@pytest.mark.parametrize("command", ["train", "train-classifier", "generate"])
def test_help_never_cuts_an_option_name_at_80_columns(command, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "…" not in text
    names = {"train": ["--tokenizer-sample", "--no-tie-weights"], "generate": ["--repetition-penalty"]}
    for name in names.get(command, ["--label-map", "--no-bidirectional"]):
        assert name in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_version_says_whether_the_compiled_cell_is_in_use(capsys):
    from lstm_text.infer import classifier

    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    built = classifier._cell is not None
    assert lines[1].startswith("compiled LSTM cell: in use" if built else "compiled LSTM cell: not built")

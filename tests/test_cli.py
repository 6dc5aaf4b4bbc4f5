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


def _bad_inputs(tmp_path, corpus_file, tiny_run):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    short = tmp_path / "short.txt"
    short.write_text("hello world\n" * 3)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 ".encode("latin-1") * 100)
    nul = tmp_path / "binary.txt"
    nul.write_bytes(b"abc\x00def" * 1000)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    run = str(tiny_run)
    out = str(tmp_path / "out")
    return [
        (["train", str(tmp_path / "missing.txt"), "--out", out], 1, "file not found"),
        (["train", str(empty), "--out", out], 1, "empty"),
        (["train", str(short), "--out", out], 1, "shorter than one sequence"),
        (["train", str(latin1), "--out", out], 1, "not valid UTF-8"),
        (["train", str(tmp_path), "--out", out], 1, "is a directory"),
        (["train", str(nul), "--out", out], 1, "NUL bytes"),
        (["train", str(corpus_file), "--out", out, "--hidden", "0"], 1, "--hidden"),
        (["train", str(corpus_file), "--out", out, "--dropout", "1.5"], 1, "--dropout"),
        (["train", str(corpus_file), "--out", out, "--batch-size", "0"], 1, "--batch-size"),
        (["train", str(corpus_file), "--out", out, "--tokenizer", "words"], 2, "words"),
        (["train", str(corpus_file), "--out", run], 1, "already holds a run"),
        (["train", "--out", out, "--resume"], 1, "no resume.safetensors"),
        (["generate", str(tmp_path / "nope")], 1, "model not found"),
        (["generate", str(garbage)], 1, "damaged"),
        (["generate", run, "x", "--temperature", "-1"], 1, "--temperature"),
        (["generate", run, "x", "--top-p", "0"], 1, "--top-p"),
        (["generate", run, "x", "--num-samples", "0"], 2, "--num-samples"),
        (["generate", run, "x", "--max-tokens", "ten"], 2, "--max-tokens"),
        (["evaluate", run, str(tmp_path / "missing.txt")], 1, "file not found"),
        (["evaluate", run, str(latin1)], 1, "not valid UTF-8"),
        (["info", str(tmp_path)], 1, "has no model.safetensors"),
        (["nonsense"], 2, "nonsense"),
    ]


def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, corpus_file, tiny_run, capsys):
    for argv, code, fragment in _bad_inputs(tmp_path, corpus_file, tiny_run):
        rc = main(argv)
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert rc == code, (argv, rc, captured.err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, captured.err)
        assert fragment.lower() in lines[0].lower(), (argv, lines[0])
        assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "out" / "model.safetensors").exists()


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
    r = runner.invoke(app, ["bench", "--quick", "--classifier", "", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["gemm_gflops"] > 0 and 0 < d["train"]["share_of_gemm"]
    assert all(g["tokens_per_s"] > 0 and g["bound_tokens_per_s"] > 0 for g in d["generate"])

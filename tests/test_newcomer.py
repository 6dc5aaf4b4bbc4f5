"""What a newcomer trips over, second round (issue 26): small files, resume, help, the prompt loop, hints."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import sys

import pytest

from lstm_text.cli import main

from conftest import FILL, NEG, POS, TINY_MODEL, tiny_train_config

MID = "okay average fine decent ordinary mixed".split()
WORDS = {"1": NEG, "2": NEG, "3": MID, "4": POS, "5": POS}
STAR_MAP = "1=negative,2=negative,3=neutral,4=positive,5=positive"


def star_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """(review, stars) rows: filler words and one word of the stars' class, the classes 2:1:2."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        stars = rng.choice("12345")
        words = [rng.choice(FILL) for _ in range(rng.randint(3, 8))] + [rng.choice(WORDS[stars])]
        rng.shuffle(words)
        rows.append((" ".join(words), stars))
    return rows


def write_csv(path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])
        w.writerows(rows)


@pytest.fixture
def stars(tmp_path):
    """A newcomer's files: 170 reviews with 1-5 stars in a CSV, and 60 for dev."""
    train, dev = tmp_path / "reviews.csv", tmp_path / "reviews_dev.csv"
    write_csv(train, star_rows(170, 1))
    write_csv(dev, star_rows(60, 2))
    return train, dev


STAR_ARGS = ["--text-column", "review", "--label-column", "stars", "--label-map", STAR_MAP]


# -- a small file learns with the defaults ---------------------------------------------------------------
@pytest.mark.slow  # ~200 steps: 10-20 s on two busy cores
def test_a_170_line_csv_learns_with_no_options_but_the_columns_and_the_label_map(tmp_path, stars, capsys):
    """Before: 5 epochs of batch 64 = 15 steps under 50 of warm-up, lr at 0.3 of its peak, dev at chance."""
    import lstm_text

    train, dev = stars
    out = tmp_path / "run"
    assert main(["train-classifier", str(train), "--dev", str(dev), *STAR_ARGS, "--out", str(out), "-q"]) == 0
    s = lstm_text.load(out).info()["training"]
    gold = [{"1": "negative", "2": "negative", "3": "neutral"}.get(st, "positive") for _, st in star_rows(60, 2)]
    majority = max(gold.count(g) for g in set(gold)) / len(gold)
    assert s["config"]["batch_size"] == 17 and s["config"]["epochs"] * 10 >= 200, s  # lines / 10 per step, 200 steps
    assert s["dev_accuracy"] >= majority + 0.3, (s["dev_accuracy"], majority)


def test_defaults_fit_the_data_and_a_large_file_keeps_them():
    from lstm_text.config import CLASSIFIER, classifier_train, fit_classifier

    small = fit_classifier(classifier_train(), 170)
    assert small.batch_size == 17 and small.epochs * 170 / 17 >= CLASSIFIER.min_steps
    big = fit_classifier(classifier_train(), 67_000)
    assert (big.batch_size, big.epochs) == (CLASSIFIER.batch_size, CLASSIFIER.epochs)
    given = fit_classifier(classifier_train(batch_size=4, max_steps=9), 170)
    assert (given.batch_size, given.max_steps, given.epochs) == (4, 9, 0)


def test_warm_up_ends_within_a_tenth_of_any_run():
    from lstm_text.config import classifier_train
    from lstm_text.training.loop import lr_at

    cfg = classifier_train(batch_size=64, epochs=5)  # 15 steps on 170 lines, warm-up 50 steps
    assert lr_at(cfg, 2, 2 / 15) == pytest.approx(cfg.lr, rel=0.05)  # the peak, less a little cosine decay
    assert lr_at(cfg, 0, 0.0) == pytest.approx(cfg.lr / 50)
    timed = classifier_train(time_budget=30)  # a time budget: a tenth of its seconds
    assert lr_at(timed, 3, 0.1) == pytest.approx(timed.lr, rel=0.05) and lr_at(timed, 3, 0.05) < 0.6 * timed.lr


def test_patience_counts_only_once_the_warm_up_is_over_and_the_loss_has_left_chance(tmp_path, monkeypatch, stars):
    """Before: with --time-budget and patience, dev stuck at the majority class stopped the run at step 8."""
    from lstm_text.training.classifier import ClassifierTask

    monkeypatch.setattr(ClassifierTask, "validate", lambda self, model: {"dev_accuracy": 0.5, "dev_macro_f1": 0.5})
    monkeypatch.setattr(ClassifierTask, "chance_loss", lambda self: None)  # the warm-up alone here
    import lstm_text

    kw = dict(**_star_kw(), model={"hidden": 8, "embed": 8}, patience=2, batch_size=34)
    s = lstm_text.train_classifier(str(stars[0]), tmp_path / "r", **kw, warmup=40, max_steps=400)
    # 5 steps per epoch, a validation every 2-3 steps: before, the third one stopped it at step 8
    assert s["stop"] == "patience" and 40 <= s["steps"] <= 50, s["steps"]
    # nor while the training loss is at chance: here always (a chance loss of 0), so the run goes to its end
    monkeypatch.setattr(ClassifierTask, "chance_loss", lambda self: 0.0)
    s = lstm_text.train_classifier(str(stars[0]), tmp_path / "r2", **kw, warmup=4, max_steps=30)
    assert s["stop"] == "limit" and s["steps"] == 30


def _star_kw() -> dict:
    from lstm_text.data.labelled import parse_label_map

    return {"text_column": "review", "label_column": "stars", "label_map": parse_label_map(STAR_MAP)}


def test_a_run_that_has_not_learned_says_so(tmp_path, stars, capsys):
    train, dev = stars
    args = ["train-classifier", str(train), "--dev", str(dev), *STAR_ARGS, "--out", str(tmp_path / "r")]
    assert main([*args, "--lr", "1e-7", "--max-steps", "20", "--hidden", "8", "--embed", "8", "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: the model has not learned: its training loss" in err and "still at chance" in err


# -- --resume: what it may change, and a true message ----------------------------------------------------
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


# -- leftovers, overwriting ------------------------------------------------------------------------------
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


def test_overwrite_replaces_a_run_and_only_its_files(tmp_path, corpus_file, capsys):
    out = tmp_path / "r"
    args = ["train", str(corpus_file), "--out", str(out), "--max-steps", "3", "--hidden", "8", "--embed", "8", "-q"]
    assert main(args) == 0
    (out / "notes.txt").write_text("mine")
    first, log = (out / "model.safetensors").read_bytes(), (out / "metrics.jsonl").read_text()
    assert main(args) == 1 and "replace it with --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--seed", "1"]) == 0
    assert (out / "model.safetensors").read_bytes() != first and (out / "notes.txt").read_text() == "mine"
    new_log = (out / "metrics.jsonl").read_text()  # the old run's log went with it
    assert len(new_log.splitlines()) == len(log.splitlines()) and new_log != log
    assert main(["train", "--out", str(out), "--resume", "--overwrite"]) == 1
    assert "choose one" in capsys.readouterr().err


# -- --help, --version -----------------------------------------------------------------------------------
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


# -- the prompt loop ---------------------------------------------------------------------------------------
class _Session:
    def turn(self, text):
        yield f"<{text}>"

    def command(self, line):
        return None if line == "/quit" else "ok"


def test_the_prompt_loop_edits_lines_with_readline_and_keeps_a_history(tmp_path, monkeypatch, capsys):
    pytest.importorskip("readline")
    from lstm_text import cli

    history = tmp_path / "history"
    monkeypatch.setenv("LSTM_TEXT_HISTORY", str(history))
    stdin = io.StringIO("first turn\n\nsecond turn\n/quit\n")
    stdin.isatty = lambda: True
    monkeypatch.setattr(sys, "stdin", stdin)
    cli._repl(_Session(), "")
    assert "readline" in sys.modules  # input() edits lines (arrows, Home/End) on a terminal
    assert "<first turn>" in capsys.readouterr().out
    assert history.read_text().split("\n")[-3:] == ["first turn", "second turn", "/quit"] or "second turn" in (
        history.read_text()
    )
    import readline

    n = readline.get_current_history_length()
    assert readline.get_history_item(n) == "/quit" and readline.get_history_item(n - 1) == "second turn"


# -- labels ------------------------------------------------------------------------------------------------
def test_a_label_map_that_leaves_a_label_out_gives_a_notice_or_with_strict_an_error(tmp_path, stars, capsys):
    train, _ = stars
    args = ["train-classifier", str(train), "--text-column", "review", "--label-column", "stars"]
    args += ["--label-map", "1=negative,2=negative,4=positive,5=positive", "--max-steps", "2", "--hidden", "8"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "notice: --label-map leaves 3 unmapped: each stays a class of its own (--strict makes this an error)" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--strict"]) == 1
    assert "error: --label-map leaves 3 unmapped; map every label" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


# -- plot's time axis --------------------------------------------------------------------------------------
def test_plot_draws_wall_clock_seconds_from_the_runs_wall_clock(tiny_run):
    from lstm_text.plot import read_metrics, time_axis

    recs = read_metrics(tiny_run)
    assert all(r["wall"] >= r["elapsed"] for r in recs)
    assert time_axis({"a": recs})[0] == "wall"
    old = [{k: v for k, v in r.items() if k != "wall"} for r in recs]  # a log written before "wall"
    assert time_axis({"a": recs, "old": old}) == ("elapsed", "training seconds (validation and saving not counted)")


# -- empty input lines: one convention ----------------------------------------------------------------------
def test_an_empty_line_gets_empty_label_and_score_fields_in_text_and_tsv(tmp_path, capsys):
    f = tmp_path / "in.txt"
    f.write_text("a good film\n\n   \nbad\n")
    for fmt in ("text", "tsv"):
        assert main(["classify", str(f), "--format", fmt]) == 0
        lines = capsys.readouterr().out.split("\n")
        assert lines[1] == "\t\t" and lines[2] == "\t\t   ", (fmt, lines)
    assert main(["classify", str(f), "--format", "jsonl"]) == 0
    rec = json.loads(capsys.readouterr().out.splitlines()[1])
    assert rec["label"] is None and rec["score"] is None


# -- hints -------------------------------------------------------------------------------------------------
def test_an_offline_dataset_download_names_lstm_text_data_and_the_file(tmp_path, monkeypatch, capsys):
    import urllib.error
    import urllib.request

    from lstm_text.data import datasets

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.delenv("LSTM_TEXT_DATA", raising=False)
    monkeypatch.setattr(datasets, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["train", "tinyshakespeare", "--out", str(tmp_path / "r"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "Name or service not known" in err and "$LSTM_TEXT_DATA/tinyshakespeare/input.txt" in err
    assert str(tmp_path / "cache" / "tinyshakespeare" / "input.txt") in err


def test_the_readme_documents_every_registered_dataset():
    """The README is the package's long description: a pip user has it, not the repository's data/README.md."""
    from pathlib import Path

    from lstm_text.data.datasets import REGISTRY

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Datasets") :]
    for d in REGISTRY.values():
        assert f"`{d.name}`" in section and f"`{d.file}`" in section and d.sha256 in section
    assert "LSTM_TEXT_DATA" in section


def test_a_misspelt_model_name_gets_a_suggestion(capsys):
    assert main(["classify", "--model", "sentimnet"]) == 1
    assert "did you mean the built-in model 'sentiment'?" in capsys.readouterr().err


def test_device_cuda_without_a_cuda_torch_says_how_to_install_one(monkeypatch):
    import torch

    from lstm_text.device import resolve_device
    from lstm_text.errors import LstmTextError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(LstmTextError, match="CPU-only build; install a CUDA build with 'pip install torch --index-url"):
        resolve_device("cuda")


# -- progress from Python ----------------------------------------------------------------------------------
def test_train_from_python_shows_progress_when_asked_and_on_a_terminal(tmp_path, corpus_file, capsys):
    import lstm_text

    opts = dict(max_steps=3, batch_size=4, seq_len=16, val_tokens=1000, device="cpu")
    lstm_text.train(corpus_file, tmp_path / "a", model={"hidden": 8, "embed": 8}, **opts)
    assert capsys.readouterr().err == ""  # not a terminal: quiet, as before
    lstm_text.train(corpus_file, tmp_path / "b", model={"hidden": 8, "embed": 8}, progress=True, **opts)
    err = capsys.readouterr().err
    assert "training " in err and " parameters on cpu" in err and "step      3" in err

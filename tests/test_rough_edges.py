"""What a new user trips over first: messages, conventions and progress lines (issue 12)."""

import re

import pytest

from lstm_text.cli import main

from conftest import labelled


def test_version(capsys):
    import lstm_text

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"lstm-text {lstm_text.__version__}"


def test_a_misspelt_dataset_name_gets_a_suggestion(tmp_path, capsys):
    assert main(["train", "tinyshakespear", "--out", str(tmp_path / "r"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "file not found: tinyshakespear" in err and "did you mean the dataset 'tinyshakespeare'" in err
    assert not (tmp_path / "r").exists()


@pytest.fixture
def pro_con(tmp_path):
    p = tmp_path / "pc.tsv"
    rows = [("pro" if lab == "positive" else "con", text) for lab, text in labelled(60, 1)]
    p.write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    return p


def test_label_map_with_a_key_the_file_lacks_is_an_error_listing_its_labels(tmp_path, pro_con, capsys):
    out = tmp_path / "r"
    args = ["train-classifier", str(pro_con), "--out", str(out), "--max-steps", "1", "--quiet"]
    assert main([*args, "--label-map", "pros=positive,con=negative"]) == 1
    err = capsys.readouterr().err
    assert "--label-map names pros, which the data does not have; its labels are con, pro" in err
    assert not (out / "model.safetensors").exists()


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


def test_time_budget_is_wall_clock_with_validation_and_saving_inside(tmp_path, corpus_file, monkeypatch):
    """Validation outside the budget made a 90 s run take 1,014 s; now slow validations shorten training."""
    import json

    from lstm_text.training import loop
    from lstm_text.training.lm import LMTask, train_lm

    from conftest import TINY_MODEL, tiny_train_config

    class Clock:  # the loop's clock, moved by the work alone (a busy machine cannot move it): a step takes 0.05 s,
        now = 0.0  # a validation 0.5 s, saving the resume state 0.2 s

        @classmethod
        def perf_counter(cls):
            return cls.now

    real_loss, real_validate, real_save = LMTask.loss, LMTask.validate, loop.Trainer.save_resume

    def step_loss(self, model, batch):
        Clock.now += 0.05
        return real_loss(self, model, batch)

    def slow_validate(self, model):
        Clock.now += 0.5
        return real_validate(self, model)

    def slow_save(self):
        Clock.now += 0.2
        return real_save(self)

    monkeypatch.setattr(loop, "time", Clock)
    monkeypatch.setattr(loop.Trainer, "save_resume", slow_save)
    monkeypatch.setattr(LMTask, "loss", step_loss)
    monkeypatch.setattr(LMTask, "validate", slow_validate)
    cfg = tiny_train_config(max_steps=0, time_budget=3.0)
    s = train_lm([str(corpus_file)], tmp_path / "r", model=TINY_MODEL, train=cfg)
    # the run ends early enough for its final validation and save to fit (at most one step over)
    assert s["wall_seconds"] <= 3.0 + 0.05 and s["seconds"] < s["wall_seconds"] - 1.0  # >= 3 validations
    recs = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) >= 3  # every validation and save before a record counts in its wall clock, none in training
    after = [0.5 * (i + 1) + 0.2 * i for i in range(len(recs))]
    assert [r["wall"] - r["elapsed"] for r in recs] == pytest.approx(after, abs=0.011)


def test_patience_stops_a_classifier_that_stopped_improving(tmp_path, capsys):
    from conftest import labelled

    p = tmp_path / "easy.tsv"
    p.write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(200, 2)))
    args = ["train-classifier", str(p), "--out", str(tmp_path / "r"), "--epochs", "60", "--patience", "3"]
    assert main([*args, "--hidden", "8", "--embed", "8", "--tokenizer", "word", "--batch-size", "16"]) == 0
    err = capsys.readouterr().err
    assert "no better dev score in the last 3 validations" in err
    import json

    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["epoch"] < 60 and len(rows) >= 4
    best_before = max(r["dev_accuracy"] for r in rows[:-3])  # the best when the last 3 validations began
    assert all(r["dev_accuracy"] <= best_before for r in rows[-3:])  # none of them improved on it


def test_threshold_output_says_what_the_score_is(capsys, monkeypatch):
    import io
    import json

    monkeypatch.setattr("sys.stdin", io.StringIO("the film\n"))
    assert main(["classify", "--threshold", "0.999"]) == 0
    label, score, text = capsys.readouterr().out.rstrip("\n").split("\t")
    assert label == "neutral" and re.fullmatch(r"\((positive|negative) 0\.\d{3} < 0\.999\)", score)
    monkeypatch.setattr("sys.stdin", io.StringIO("the film\n"))
    assert main(["classify", "--threshold", "0.999", "-f", "jsonl"]) == 0
    d = json.loads(capsys.readouterr().out)
    declined = d["abstained_from"]
    assert d["label"] == "neutral" and d["score"] is None  # the binary model has no neutral probability
    assert declined["score"] == d["probs"][declined["label"]] == max(d["probs"].values())


@pytest.mark.parametrize("fmt", ["text", "tsv"])
def test_explain_shows_in_piped_text_and_tsv(capsys, monkeypatch, fmt):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("a wonderful film\n"))
    assert main(["classify", "--explain", "-f", fmt]) == 0
    cols = capsys.readouterr().out.rstrip("\n").split("\t")
    assert len(cols) == 4 and cols[2] == "a wonderful film"
    weights = dict(x.rsplit(":", 1) for x in cols[3].split())
    assert list(weights) == ["a", "wonderful", "film"]
    assert max(weights, key=lambda w: float(weights[w])) == "wonderful"


def test_a_csv_with_its_own_column_names_and_encoding_trains_and_evaluates(tmp_path, capsys):
    import json

    from conftest import labelled

    rows = "".join(f'{i},"{t} café",{lab}\n' for i, (lab, t) in enumerate(labelled(120, 5)))
    p = tmp_path / "export.csv"
    p.write_bytes(("id,review,sentiment\n" + rows).encode("cp1252"))
    out = tmp_path / "r"
    args = ["train-classifier", str(p), "--out", str(out), "--epochs", "2", "--quiet", "--tokenizer", "word"]
    assert main([*args, "--hidden", "8", "--embed", "8"]) == 1
    assert "not valid UTF-8" in capsys.readouterr().err
    cols = ["--text-column", "review", "--label-column", "sentiment", "--encoding", "cp1252"]
    assert main([*args, "--hidden", "8", "--embed", "8", *cols]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), str(p), "--encoding", "cp1252", "--json"]) == 0  # columns: the model's
    assert json.loads(capsys.readouterr().out)["examples"] == 120


def test_train_help_shows_the_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for option, default in [("--hidden", "512"), ("--tokenizer", "char"), ("--seq-len", "64"), ("--lr", "0.01")]:
        line = next(x for x in text.splitlines() if f" {option} " in x)
        assert f"[default: {default}]" in line, line


def test_notices_for_a_cut_vocabulary_and_a_tiny_corpus(tmp_path, corpus_file, capsys):
    args = ["train", str(corpus_file), "--out", str(tmp_path / "r"), "--tokenizer", "bpe", "--vocab-size", "5000"]
    args += ["--hidden", "16", "--embed", "16", "--batch-size", "4", "--seq-len", "16", "--max-steps", "1100"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert re.search(r"^notice: the corpus holds only [\d,]+ distinct bpe pieces: --vocab-size 5,000 cut to", err, re.M)
    notes = [x for x in err.splitlines() if x.startswith("notice: the data is small")]
    assert len(notes) == 1 and "10 passes" in notes[0], err


def test_training_from_python(tmp_path, corpus_file):
    import lstm_text

    from conftest import labelled

    s = lstm_text.train(corpus_file, tmp_path / "lm", model={"hidden": 16, "embed": 16}, max_steps=5, seq_len=16)
    assert s["steps"] == 5 and lstm_text.load(tmp_path / "lm").has_lm
    p = tmp_path / "l.tsv"
    p.write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(80, 1)))
    s = lstm_text.train_classifier(p, tmp_path / "clf", model={"hidden": 8}, epochs=1, label_map={"positive": "pos"})
    assert lstm_text.load(tmp_path / "clf").labels == ["negative", "pos"] and s["epochs"] == 1.0


def test_generate_returns_the_continuation_and_the_cli_prints_the_prompt_too(tiny_run, capsys):
    import lstm_text

    cont = lstm_text.load(tiny_run).generate("the ", max_tokens=20, seed=4)
    assert main(["generate", str(tiny_run), "the ", "--max-tokens", "20", "--seed", "4"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == "the " + cont

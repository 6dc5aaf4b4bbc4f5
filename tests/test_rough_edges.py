"""What a new user trips over first: messages, conventions and progress lines (issue 12)."""

import re

import pytest

from lstm_text.cli import main

from conftest import labelled


def test_version(capsys):
    import lstm_text

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lstm-text {lstm_text.__version__}"


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

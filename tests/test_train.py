import json
import math
import re

import pytest
import torch
from safetensors.torch import load_file

from lstm_text.cli import main
from lstm_text.errors import LstmTextError
from lstm_text.training.lm import train_lm

from conftest import TINY_MODEL, tiny_train_config


def test_training_lowers_loss_and_writes_a_run(tiny_run):
    recs = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["step"] == 40 and recs[-1]["val_bpc"] < recs[0]["val_bpc"]
    assert (tiny_run / "model.safetensors").is_file()


def test_evaluate_reports_the_training_val_bpc(tiny_run, corpus_text):
    import lstm_text
    from lstm_text.data import split_text

    m = lstm_text.load(tiny_run)
    val = split_text(corpus_text, 0.1)[1]
    best = m.info()["training"]["best_val_bpc"]
    assert math.isclose(m.evaluate(val)["bpc"], best, rel_tol=1e-6)


class Interrupt(Exception):
    pass


def test_resume_continues_where_it_stopped(tmp_path, corpus_file):
    model = dict(TINY_MODEL, dropout=0.1)  # dropout: the RNG must be restored too
    cfg = tiny_train_config(max_steps=20, eval_interval=5)
    train_lm([str(corpus_file)], tmp_path / "full", model=model, train=cfg)

    def stop_at_12(event, info):
        if event == "step" and info["step"] == 12:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_lm([str(corpus_file)], tmp_path / "cut", model=model, train=cfg, callback=stop_at_12)
    summary = train_lm([], tmp_path / "cut", model={}, train=tiny_train_config(max_steps=20), resume=True)
    assert summary["steps"] == 20
    a = load_file(tmp_path / "full" / "resume.safetensors")
    b = load_file(tmp_path / "cut" / "resume.safetensors")
    for k in a:
        if k.startswith("model."):
            assert torch.equal(a[k], b[k]), k
    la = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()[-1]
    lb = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()[-1]
    assert json.loads(la)["val_bpc"] == json.loads(lb)["val_bpc"]


def test_subword_training(tmp_path, corpus_file):
    s = train_lm(
        [str(corpus_file)],
        tmp_path / "bpe",
        model=TINY_MODEL,
        train=tiny_train_config(tokenizer="bpe", vocab_size=400, max_steps=5),
    )
    assert s["steps"] == 5 and s["last_val_bpc"] > 0


def test_refuses_to_overwrite_a_run(tiny_run, corpus_file):
    with pytest.raises(LstmTextError, match="already holds a run"):
        train_lm([str(corpus_file)], tiny_run, model=TINY_MODEL, train=tiny_train_config())


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


def test_device_cuda_without_a_cuda_torch_says_how_to_install_one(monkeypatch):
    import torch

    from lstm_text.device import resolve_device
    from lstm_text.errors import LstmTextError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(LstmTextError, match="CPU-only build; install a CUDA build with 'pip install torch --index-url"):
        resolve_device("cuda")


def test_train_from_python_shows_progress_when_asked_and_on_a_terminal(tmp_path, corpus_file, capsys):
    import lstm_text

    opts = dict(max_steps=3, batch_size=4, seq_len=16, val_tokens=1000, device="cpu")
    lstm_text.train(corpus_file, tmp_path / "a", model={"hidden": 8, "embed": 8}, **opts)
    assert capsys.readouterr().err == ""  # not a terminal: quiet, as before
    lstm_text.train(corpus_file, tmp_path / "b", model={"hidden": 8, "embed": 8}, progress=True, **opts)
    err = capsys.readouterr().err
    assert "training " in err and " parameters on cpu" in err and "step      3" in err

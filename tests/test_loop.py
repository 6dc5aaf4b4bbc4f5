"""The one training loop, seen through the classifier task: exact resume, signals, shared defaults; its
stopping rules (time budget, patience), warm-up, the guard against NaN losses and divergence; and the layout's
owners (old checkpoint keys, text-only evaluate)."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import lstm_text
from lstm_text.checkpoint import load_model
from lstm_text.cli import main
from lstm_text.config import CLASSIFIER, TrainConfig
from lstm_text.errors import LstmTextError, flag
from lstm_text.model import LSTMModel
from lstm_text.training.classifier import train_classifier
from lstm_text.training.lm import train_lm
from lstm_text.training.loop import Interrupted

from conftest import STAR_ARGS, STAR_MAP, TINY_MODEL, labelled, star_rows, tiny_train_config

TINY_CLF = {"hidden": 16, "embed": 12, "dropout": 0.3, "embed_dropout": 0.1}


@pytest.fixture(scope="module")
def clf_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("clfdata")
    (d / "train.tsv").write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(300, 3)))
    (d / "dev.tsv").write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(40, 4)))
    return d


def _cfg(**kw):
    base = dict(tokenizer="unigram", vocab_size=300, batch_size=16, lr=1e-2, warmup=3, epochs=3, seed=0, device="cpu")
    return TrainConfig(**{**base, **kw})


def test_classifier_resume_after_a_signal_is_bit_exact(tmp_path, clf_data):
    data, dev = [str(clf_data / "train.tsv")], [str(clf_data / "dev.tsv")]
    full = train_classifier(data, tmp_path / "full", dev=dev, model=TINY_CLF, train=_cfg())

    def sigint_at_23(event, info):  # mid-epoch, after the first half-epoch validation saved the resume state
        if event == "step" and info["step"] == 23:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted) as e:
        train_classifier(data, tmp_path / "cut", dev=dev, model=TINY_CLF, train=_cfg(), callback=sigint_at_23)
    assert e.value.exit_code == 130 and str(e.value).endswith(f"continue it with out {tmp_path / 'cut'} resume")
    assert e.value.render(flag).endswith(f"continue it with --out {tmp_path / 'cut'} --resume")  # the CLI's words
    resumed = train_classifier([], tmp_path / "cut", resume=True)
    assert resumed["steps"] == full["steps"] and resumed["dev_accuracy"] == full["dev_accuracy"]
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = load_file(tmp_path / "full" / "resume.safetensors"), load_file(tmp_path / "cut" / "resume.safetensors")
    assert all(torch.equal(ra[k], rb[k]) for k in ra if k.startswith(("model.", "opt.")))


def test_classifier_resume_refuses_changed_data_and_the_wrong_run_kind(tmp_path, clf_data, tiny_run):
    data, dev = [str(clf_data / "train.tsv")], [str(clf_data / "dev.tsv")]
    train_classifier(data, tmp_path / "r", dev=dev, model=TINY_CLF, train=_cfg(epochs=1))
    with pytest.raises(LstmTextError, match="not a classifier run"):
        train_classifier([], tiny_run, resume=True)
    with pytest.raises(LstmTextError, match="already holds a run; continue it with resume"):
        train_classifier(data, tmp_path / "r", dev=dev, model=TINY_CLF, train=_cfg(epochs=1))
    original = (clf_data / "train.tsv").read_text()
    (clf_data / "train.tsv").write_text(original + "positive\tone more line\n")
    try:
        with pytest.raises(LstmTextError, match="labelled data differs"):
            train_classifier([], tmp_path / "r", resume=True, train=TrainConfig(epochs=2))
    finally:
        (clf_data / "train.tsv").write_text(original)


@pytest.mark.slow  # two CLI runs in subprocesses (~40 s on busy cores); the in-process resume is tested above
def test_sigterm_saves_a_classifier_run_that_the_cli_resumes(tmp_path, clf_data):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "lstm_text", "train-classifier", str(clf_data / "train.tsv")]
    cmd += ["--dev", str(clf_data / "dev.tsv"), "--out", str(out), "--max-steps", "100000", "--hidden", "8"]
    cmd += ["--embed", "8", "--vocab-size", "300", "--batch-size", "8"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 90
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted at step") and f"continue it with --out {out} --resume" in last
    assert "Traceback" not in err
    stopped = int(last.split("at step ")[1].split(";")[0])
    r = subprocess.run(
        [sys.executable, "-m", "lstm_text", "train-classifier", "--out", str(out), "--resume"]
        + ["--max-steps", str(stopped + 10), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert lstm_text.load(out).info()["training"]["steps"] == stopped + 10


def test_python_callers_get_the_same_classifier_defaults_as_the_cli(tmp_path, clf_data):
    s = train_classifier([str(clf_data / "train.tsv")], tmp_path / "d", train=_cfg(vocab_size=0, epochs=0.5))
    cfg = lstm_text.load(tmp_path / "d").cfg
    assert (cfg.hidden, cfg.embed, cfg.layers, cfg.dropout) == (
        CLASSIFIER.hidden,
        CLASSIFIER.embed,
        CLASSIFIER.layers,
        CLASSIFIER.dropout,
    )
    assert cfg.bidirectional and not cfg.lm_head and s["steps"] > 0


def test_a_model_saved_before_the_rename_loads_with_its_calibration(tmp_path, tiny_run):
    """Model files written before ModelConfig.temperature became calibration_temperature still load."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    src = tiny_run / "model.safetensors"
    meta = safe_open(src, "pt").metadata()
    cfg = json.loads(meta["config"])
    cfg.pop("calibration_temperature")
    cfg["temperature"] = 1.7  # the old key
    save_file(load_file(src), tmp_path / "old.safetensors", metadata={**meta, "config": json.dumps(cfg)})
    assert lstm_text.load(tmp_path / "old.safetensors").cfg.calibration_temperature == 1.7
    builtin = lstm_text.load("sentiment")  # saved by an earlier version: its calibration survives the rename
    assert builtin.cfg.calibration_temperature != 1.0


def test_evaluate_takes_text_never_a_path(tiny_run, corpus_file):
    m = lstm_text.load(tiny_run)
    from_file = m.evaluate_file(corpus_file)
    as_text = m.evaluate(str(corpus_file))  # the path's characters, not the file behind it
    assert as_text["characters"] == len(str(corpus_file)) != from_file["characters"]
    with pytest.raises(LstmTextError, match="evaluate_file"):
        m.evaluate(corpus_file)


def test_a_word_only_in_the_vectors_takes_the_class_of_its_neighbours(tmp_path):
    """--vectors: words the labelled data never shows keep their pretrained rows, so they classify like their
    nearest trained neighbours; and the vector rows stay frozen through training."""
    import random

    import numpy as np

    rng = np.random.default_rng(0)
    pos, neg = "good great fine nice".split(), "bad awful poor nasty".split()
    fill = "the film was a story and this movie is".split()
    d = 8
    direction = rng.normal(size=d)
    rows = {w: direction * 2 + rng.normal(size=d) * 0.3 for w in pos + ["superb"]}
    rows |= {w: -direction * 2 + rng.normal(size=d) * 0.3 for w in neg + ["atrocious"]}
    rows |= {w: rng.normal(size=d) * 0.3 for w in fill}
    (tmp_path / "vec.txt").write_text("".join(f"{w} {' '.join(f'{x:.5f}' for x in v)}\n" for w, v in rows.items()))
    r = random.Random(0)
    lines = []
    for _ in range(400):
        lab = r.choice(["positive", "negative"])
        words = [r.choice(fill) for _ in range(r.randint(2, 5))] + [r.choice(pos if lab == "positive" else neg)]
        r.shuffle(words)
        lines.append(f"{lab}\t{' '.join(words)}\n")
    (tmp_path / "train.tsv").write_text("label\ttext\n" + "".join(lines))
    cfg = TrainConfig(tokenizer="word", normalize=True, batch_size=16, lr=1e-2, warmup=3, epochs=4, seed=0)
    vec = str(tmp_path / "vec.txt")
    train_classifier([str(tmp_path / "train.tsv")], tmp_path / "run", model={"hidden": 8}, train=cfg, vectors=vec)
    m = lstm_text.load(tmp_path / "run")
    assert m.cfg.embed == d and m.tokenizer.kind == "word" and "superb" in m.tokenizer.index
    assert [r["label"] for r in m.classify(["the film was SUPERB", "this movie is atrocious"])] == [
        "positive",
        "negative",
    ]
    stored = m.ckpt.weights["embed.weight"]
    for w in ("good", "superb", "awful"):
        assert np.allclose(stored[m.tokenizer.index[w]], rows[w], atol=1e-5), w  # frozen


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


def test_warm_up_peaks_at_lr_on_its_last_step():
    """Before: the last warm-up step took the cosine's rate, a hair under --lr, so --lr was never used and the
    shipped sentiment model no longer came back from its recipe (benchmarks/README.md)."""
    from lstm_text.config import classifier_train
    from lstm_text.training.loop import lr_at

    cfg = classifier_train(epochs=4)  # a long run: warm-up over its 50 steps
    assert cfg.warmup == 50
    assert lr_at(cfg, 48, 0.001) == pytest.approx(cfg.lr * 49 / 50)
    assert lr_at(cfg, 49, 0.001) == cfg.lr  # the peak, exactly
    assert lr_at(cfg, 50, 0.001) < cfg.lr  # then the cosine


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

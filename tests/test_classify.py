import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lstm_text
from lstm_text.cli import app, main

from conftest import labelled

runner = CliRunner()


@pytest.fixture(scope="module")
def sentiment_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sent")
    (d / "train.tsv").write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(400, 0)))
    (d / "dev.jsonl").write_text("".join(json.dumps({"text": b, "label": a}) + "\n" for a, b in labelled(60, 1)))
    return d


@pytest.fixture(scope="module")
def clf_run(tmp_path_factory, sentiment_files):
    out = tmp_path_factory.mktemp("clf") / "run"
    r = runner.invoke(
        app,
        [
            "train-classifier",
            str(sentiment_files / "train.tsv"),
            "--dev",
            str(sentiment_files / "dev.jsonl"),
            "--out",
            str(out),
            "--epochs",
            "6",
            "--hidden",
            "24",
            "--embed",
            "16",
            "--vocab-size",
            "400",
            "--batch-size",
            "16",
            "--lr",
            "1e-2",
            "--warmup",
            "5",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    return out


def test_classifier_learns_and_reports(clf_run, sentiment_files):
    info = lstm_text.load(clf_run).info()
    assert info["heads"] == ["classifier (negative, positive)"]
    assert info["training"]["dev_accuracy"] >= 0.9
    e = runner.invoke(app, ["evaluate", str(clf_run), str(sentiment_files / "dev.jsonl"), "--json"])
    d = json.loads(e.stdout)
    assert d["accuracy"] >= 0.9 and len(d["confusion"]) == 2 and 0 <= d["ece"] <= 1
    assert runner.invoke(app, ["evaluate", str(clf_run), str(sentiment_files / "dev.jsonl")]).exit_code == 0


def test_classify_stdin_all_formats_keeps_order_and_count(clf_run):
    lines = ["a wonderful movie", "", "boring and dull", "x" * 5000, "the film was great"] * 7
    stdin = "\n".join(lines) + "\n"
    for fmt in ("text", "tsv", "jsonl"):
        r = runner.invoke(app, ["classify", "--model", str(clf_run), "--format", fmt, "--batch-size", "3"], input=stdin)
        assert r.exit_code == 0, r.output
        out = r.stdout.splitlines()
        assert len(out) == len(lines)
        if fmt == "jsonl":
            recs = [json.loads(o) for o in out]
            assert [x["text"] for x in recs] == lines
            assert recs[1]["label"] is None
            assert recs[0]["label"] == "positive" and recs[2]["label"] == "negative"
            assert abs(sum(recs[0]["probs"].values()) - 1) < 1e-5
        else:
            assert [o.split("\t", 2)[2] for o in out] == lines


def test_batching_does_not_change_results(clf_run):
    m = lstm_text.load(clf_run)
    texts = ["a wonderful movie", "boring", "the film was great and fun", "ugly mess"] * 5
    one = [r["probs"] for r in m.classify(texts)]
    for t, p in zip(texts, one):
        assert m.classify(t)["probs"] == pytest.approx(p, abs=1e-5)


def test_threshold_abstains_and_explain_points_at_the_sentiment_word(clf_run):
    m = lstm_text.load(clf_run)
    assert m.classify("the film", threshold=0.999)["label"] in ("neutral", "positive", "negative")
    weights = dict(m.explain("the film was wonderful"))
    assert max(weights, key=weights.get) == "wonderful"
    r = runner.invoke(app, ["classify", "--model", str(clf_run), "--explain", "-f", "jsonl"], input="so boring\n")
    assert json.loads(r.stdout)["explain"][1][0] == "boring"


def test_classifier_from_a_language_model_still_generates(tmp_path, tiny_run, sentiment_files):
    out = tmp_path / "ft"
    r = runner.invoke(
        app,
        [
            "train-classifier",
            str(sentiment_files / "train.tsv"),
            "--out",
            str(out),
            "--init",
            str(tiny_run),
            "--max-steps",
            "10",
            "--batch-size",
            "16",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    m = lstm_text.load(out)
    assert m.has_lm and m.labels == ["negative", "positive"]
    assert len(m.generate("the", max_tokens=10, seed=0)) == 10
    assert m.classify("good")["label"] in m.labels


def test_balance_lets_a_rare_class_be_predicted(tmp_path):
    """One line in ten is "rare"; the cue word "meh" is in 60% of rare lines and 20% of common ones. The
    Bayes rule under the 90/10 prior says "common" even with the cue (P(rare | meh) = 0.25); with the classes
    weighed equally (--balance) it says "rare" when the cue is there (0.75) and "common" otherwise."""
    import random

    from lstm_text.config import TrainConfig
    from lstm_text.training.classifier import train_classifier

    from conftest import FILL

    rng = random.Random(0)

    def rows(n):
        out = []
        for i in range(n):
            lab = "rare" if i % 10 == 0 else "common"
            words = [rng.choice(FILL) for _ in range(rng.randint(2, 5))]
            if rng.random() < (0.6 if lab == "rare" else 0.2):
                words.insert(rng.randint(0, len(words)), "meh")
            out.append(f"{lab}\t{' '.join(words)}\n")
        return "label\ttext\n" + "".join(out)

    (tmp_path / "train.tsv").write_text(rows(2000))
    (tmp_path / "dev.tsv").write_text(rows(300))
    with_cue = [f"the film meh {rng.choice(FILL)}" for _ in range(20)]
    without = [f"the film {rng.choice(FILL)} story" for _ in range(20)]
    for balance in (False, True):
        out = tmp_path / f"run{balance}"
        model = {"hidden": 16, "embed": 16, "bidirectional": True, "lm_head": False, "tie_weights": False}
        tcfg = TrainConfig(tokenizer="char", batch_size=32, lr=1e-2, warmup=5, epochs=4, seed=0, device="cpu")
        s = train_classifier(
            [str(tmp_path / "train.tsv")],
            out,
            dev=[str(tmp_path / "dev.tsv")],
            model=model,
            train=tcfg,
            balance=balance,
        )
        assert s["balance"] is balance
        m = lstm_text.load(out)
        rare = [r["label"] == "rare" for r in m.classify(with_cue)]
        assert all(rare) if balance else not any(rare)
        assert not any(r["label"] == "rare" for r in m.classify(without))
        metric = "dev_macro_f1" if balance else "dev_accuracy"
        recs = [json.loads(x) for x in (out / "metrics.jsonl").open()]
        best = max(r[metric] for r in recs)
        assert s["best_step"] in [r["step"] for r in recs if r[metric] == best]


def test_unknown_labels_at_evaluation_are_skipped_and_reported(clf_run, tmp_path):
    f = tmp_path / "eval.tsv"
    f.write_text("label\ttext\npositive\tgreat fun\nneutral\tthe film\nnegative\tso dull\n")
    d = lstm_text.load(clf_run).evaluate_labelled(f)
    assert d["examples"] == 2 and d["unknown_labels"] == ["neutral"] and d["skipped"] == 1


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=300), max_size=12))
def test_fuzz_classify_stream_any_unicode(clf_run, lines):
    from lstm_text.infer.classifier import classify_stream

    m = _loaded(clf_run)
    out = list(classify_stream(m.classifier, m.tokenizer, lines, batch_size=3, window=2))
    assert [t for t, _ in out] == lines
    for t, r in out:
        assert (r["label"] is None) == (not t.strip())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_fuzz_classify_cli_any_bytes(clf_run, tmp_path_factory, data):
    from lstm_text.cli import main

    f = tmp_path_factory.mktemp("fuzz") / "in.txt"
    f.write_bytes(data)
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["classify", "--model", str(clf_run), str(f), "--format", "jsonl"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        assert rc == 1 and err.getvalue().startswith("error: ") and len(err.getvalue().splitlines()) == 1
        return
    assert rc == 0
    expected = text.split("\n")
    if expected[-1] == "":  # a final line ending ends the last line; it does not start another
        expected.pop()
    got = [json.loads(x)["text"] for x in out.getvalue().split("\n")[:-1]]
    assert got == [e.rstrip("\r") for e in expected]


_MODELS = {}


def _loaded(path):
    if path not in _MODELS:
        _MODELS[path] = lstm_text.load(path)
    return _MODELS[path]


def test_classifying_never_imports_torch():
    """The built-in model classifies, explains and reports info on the NumPy path: start-up stays fast."""
    import subprocess
    import sys

    code = (
        "import sys, lstm_text\n"
        "m = lstm_text.load('sentiment')\n"
        "assert m.classify('a gorgeous, witty film')['label'] == 'positive'\n"
        "m.explain('a dull film'); m.info()\n"
        "print('torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_both_built_in_models_classify_everyday_lines_offline():
    """The shipped models load from the package (no network) and get plain lines right, capitals and all."""
    pos, neg = "I love this phone, the battery lasts forever.", "Worst customer service ever"
    s = lstm_text.load("sentiment").classify([pos, neg, neg.upper(), "Not bad at all, actually quite good."])
    assert [r["label"] for r in s] == ["positive", "negative", "negative", "positive"]
    s3 = lstm_text.load("sentiment3").classify([pos, neg, "The meeting is at 3pm in room 4."])
    assert [r["label"] for r in s3] == ["positive", "negative", "neutral"]


def test_int8_classification_is_close_to_float32():
    import numpy as np

    texts = ["a gorgeous, witty film", "a dull, tedious mess", "it is a film", "the best movie of the year"]
    p32 = [r["probs"]["positive"] for r in lstm_text.load("sentiment").classify(texts)]
    p8 = [r["probs"]["positive"] for r in lstm_text.load("sentiment", quantize="int8").classify(texts)]
    assert np.allclose(p32, p8, atol=0.02) and p32 != p8


def test_batches_are_bounded_in_padded_tokens(monkeypatch):
    import numpy as np

    from lstm_text.infer import classifier as inference

    m = lstm_text.load("sentiment")
    clf = m.classifier
    texts = ["good " * n for n in (1, 3, 40, 200, 7, 90, 2, 300)] * 5
    seqs = inference.encode_lines(m.tokenizer, texts)
    ref = np.concatenate([clf.logits([s]) for s in seqs])  # one line per batch
    shapes = []
    batch = clf._batch
    monkeypatch.setattr(clf, "_batch", lambda ids, lengths: shapes.append(ids.shape) or batch(ids, lengths))
    monkeypatch.setattr(inference, "BATCH_TOKENS", 1000)
    got = clf.logits(seqs)
    assert np.allclose(got, ref, atol=1e-4)
    assert len(shapes) > 1 and all(b == 1 or b * t <= 1000 for b, t in shapes)


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


def test_a_misspelt_model_name_gets_a_suggestion(capsys):
    assert main(["classify", "--model", "sentimnet"]) == 1
    assert "did you mean the built-in model 'sentiment'?" in capsys.readouterr().err


def _on_a_terminal(args: list[str], cwd: Path) -> str:
    """What `lstm-text ARGS` writes with its stdout on a pseudo-terminal (as a user would see it)."""
    import pty

    main_fd, sub_fd = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "lstm_text", *args], stdout=sub_fd, stderr=subprocess.PIPE, cwd=cwd)
    os.close(sub_fd)
    out = b""
    while True:
        try:
            b = os.read(main_fd, 65536)
        except OSError:  # the other side closed
            break
        if not b:
            break
        out += b
    p.wait(timeout=60)
    os.close(main_fd)
    assert p.returncode == 0, p.stderr.read()
    return out.decode("utf-8", "replace")


@pytest.mark.parametrize("explain", [["--explain"], []])
def test_control_characters_of_the_input_are_shown_not_obeyed_on_a_terminal(tmp_path, explain):
    """`ESC]0;` would set the window title and `ESC[2J` clear the screen: on a terminal they appear as escapes;
    piped output keeps the text as it came."""
    f = tmp_path / "in.txt"
    f.write_text("a great \x1b]0;owned\x07 movie \x1b[2J\n", encoding="utf-8")
    out = _on_a_terminal(["classify", str(f), *explain], tmp_path)
    assert "\x1b]0;" not in out and "\x1b[2J" not in out and "\x07" not in out, repr(out)
    assert "\\x1b]0;" in out and "\\x1b[2J" in out, repr(out)
    piped = subprocess.run(
        [sys.executable, "-m", "lstm_text", "classify", str(f), *explain], capture_output=True, text=True, cwd=tmp_path
    )
    assert "\x1b]0;owned\x07" in piped.stdout

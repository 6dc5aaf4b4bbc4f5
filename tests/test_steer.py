"""Sentiment-steered generation (FUDGE) and the interactive session: steering moves the classifier's verdict
on a tiny model, strength 0 is plain sampling, the session's state carries over, bad input is one line."""

import io

import numpy as np
import pytest
import torch

import lstm_text
from lstm_text.cli import main
from lstm_text.infer.steer import window

VOWELS = "aeiou"


def planted_classifier(path, text: str, labels=("negative", "positive")):
    """A char classifier whose second label's probability rises with the share of vowels in a text.

    Cell 0 holds +0.76 after a vowel and -0.76 after anything else, so its mean over the text (the pooled
    "mean" feature) is a vowel share; the head turns it into a logit around a typical share."""
    from lstm_text.checkpoint import save_model
    from lstm_text.config import ModelConfig
    from lstm_text.model import LSTMModel
    from lstm_text.tokenizer import CharTokenizer

    tok = CharTokenizer.train(text)
    cfg = ModelConfig(
        vocab_size=tok.vocab_size, embed=2, hidden=2, lm_head=False, tie_weights=False, labels=list(labels)
    )
    net = LSTMModel(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.embed.weight[2:, 0] = torch.tensor([1.0 if ch in VOWELS else -1.0 for ch in tok.chars])
        lstm = net.lstms[0]
        H = 2
        lstm.bias_ih_l0[0], lstm.bias_ih_l0[H], lstm.bias_ih_l0[3 * H] = 10.0, -10.0, 10.0  # i open, f shut, o open
        lstm.weight_ih_l0[2 * H, 0] = 6.0  # candidate: +-1 by vowel
        head = net.cls_head[1]
        head.weight[1, 2 * H] = 20.0  # the mean-pooled cell 0 (POOLING: last, max, mean)
        head.bias[1] = 20.0 * 0.76 * (1 - 2 * 0.3)  # even odds at a 30% vowel share
    save_model(path, net, tok)
    return str(path)


@pytest.fixture(scope="module")
def lm(tiny_run):
    return lstm_text.load(tiny_run)


@pytest.fixture(scope="module")
def planted(tmp_path_factory, corpus_text):
    d = tmp_path_factory.mktemp("clf")
    return {
        "clf": planted_classifier(d / "vowels.safetensors", corpus_text),
        "spam": planted_classifier(d / "spam.safetensors", corpus_text, labels=("spam", "ham")),
        "xyz": planted_classifier(d / "xyz.safetensors", "xyz"),
    }


def test_steering_shifts_the_class_distribution(lm, planted):
    clf = lstm_text.load(planted["clf"])

    def share_positive(**steer) -> float:
        texts = lm.generate("the ", num_samples=16, max_tokens=60, seed=1, temperature=1.0, **steer)
        return float(np.mean([r["probs"]["positive"] for r in clf.classify(texts)]))

    base = share_positive()
    pos = share_positive(sentiment="positive", classifier=planted["clf"], strength=2.0)
    neg = share_positive(sentiment="negative", classifier=planted["clf"], strength=2.0)
    assert pos > base + 0.15 and neg < base - 0.15, (neg, base, pos)


def test_strength_zero_is_plain_sampling_and_stream_matches(lm, planted):
    plain = lm.generate("the king", max_tokens=40, greedy=True)
    zero = lm.generate(
        "the king", max_tokens=40, greedy=True, sentiment="positive", classifier=planted["clf"], strength=0
    )
    assert zero == plain
    opts = dict(max_tokens=40, seed=4, sentiment="negative", classifier=planted["clf"], strength=3.0)
    assert "".join(lm.stream("the", **opts)) == lm.generate("the", **opts)


def test_window_is_bounded_and_starts_at_a_word():
    text = "word " * 100
    w = window(text, 32)
    assert len(w) <= 32 and w.startswith("word")
    assert window("short", 32) == "short"


def test_steering_from_the_command_line_streams(lm, planted, capsys):
    run = str(lm.meta["path"])
    args = ["generate", run, "the", "--max-tokens", "30", "--seed", "0", "--sentiment", "positive"]
    assert main(args + ["--classifier", planted["clf"], "--strength", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the") and len(out) == len("the") + 30 + 1


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        (["{run}", "the", "--sentiment", "positive", "--classifier", "{spam}"], 1, "has no label 'positive'"),
        (["{run}", "the", "--sentiment", "positive", "--classifier", "{xyz}"], 1, "does not fit"),
        (["{run}", "the", "--sentiment", "positive", "--classifier", "{run}"], 1, "no classification head"),
        (["sentiment", "x", "--sentiment", "positive"], 1, "cannot generate"),
        (["{run}", "the", "--sentiment", "positive", "--strength", "-1"], 1, "--strength"),
        (["{run}", "the", "--sentiment", "positive", "--strength", "nan"], 1, "--strength"),
        (["{run}", "the", "--strength", "2"], 2, "give --sentiment"),
        (["{run}", "the", "--sentiment", "happy"], 2, "--sentiment"),
        (["{run}", "the", "--interactive", "--num-samples", "2"], 2, "one sample per turn"),
    ],
)
def test_bad_steering_is_one_line(lm, planted, capsys, args, code, fragment):
    values = dict(run=lm.meta["path"], **planted)
    rc = main(["generate"] + [a.format(**values) for a in args])
    c = capsys.readouterr()
    err = c.err.strip().splitlines()
    assert rc == code and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], c.err
    assert c.out == ""  # nothing written before the error: not even the prompt


def test_session_state_carries_over_turns(lm):
    s = lm.session(max_tokens=25, seed=3)
    reply = "".join(s.turn("the king"))
    fresh = lm.session(max_tokens=0)
    fresh.read("the king" + reply)  # one read of the whole conversation leaves the same state
    torch.testing.assert_close(s.logits, fresh.logits, atol=1e-4, rtol=1e-4)
    s.read(" and the queen")
    fresh.read(" and the queen")
    torch.testing.assert_close(s.logits, fresh.logits, atol=1e-4, rtol=1e-4)
    assert s.command("/reset") and s.state is None
    s.read("the")
    new = lm.session(max_tokens=0)
    new.read("the")
    torch.testing.assert_close(s.logits, new.logits)


def test_repl_commands(lm, planted, capsys, monkeypatch):
    lines = "the king\n/temp 0.5\n/temp hot\n/bogus\n/help\n/sentiment positive\n/reset\nthe\n/quit\nnever read\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    args = ["generate", str(lm.meta["path"]), "--interactive", "--max-tokens", "12", "--seed", "0"]
    assert main(args + ["--classifier", planted["clf"]]) == 0
    c = capsys.readouterr()
    assert len(c.out) == 2 * (12 + 1), c.out  # two replies of 12 characters, each closed by a line break
    assert "temperature 0.5" in c.err and "/temp needs a number" in c.err and "unknown command /bogus" in c.err
    assert "/reset" in c.err and "steering towards positive" in c.err and "the conversation is forgotten" in c.err
    monkeypatch.setattr("sys.stdin", io.StringIO("/sentiment positive\nthe\n"))  # end of input ends the session
    assert main(["generate", str(lm.meta["path"]), "-i", "--max-tokens", "5", "--classifier", planted["xyz"]]) == 0
    c = capsys.readouterr()
    assert "does not fit" in c.err and len(c.out) == 5 + 1

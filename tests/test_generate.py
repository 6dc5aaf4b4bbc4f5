import io
import re
import sys

import pytest
import torch

import lstm_text
from lstm_text.cli import main
from lstm_text.config import GenerateConfig
from lstm_text.errors import LstmTextError
from lstm_text.infer.generate import StopText, filter_logits
from lstm_text.tokenizer import CharTokenizer


@pytest.fixture(scope="module")
def model(tiny_run):
    return lstm_text.load(tiny_run)


def test_top_k_one_equals_greedy(model):
    a = model.generate("the king", max_tokens=40, top_k=1, seed=1)
    b = model.generate("the king", max_tokens=40, greedy=True)
    c = model.generate("the king", max_tokens=40, top_k=1, seed=99, temperature=2.0)
    assert a == b == c


def test_same_seed_same_text_and_stream_matches(model):
    a = model.generate("the", max_tokens=60, seed=5, temperature=0.9, top_p=0.9)
    b = model.generate("the", max_tokens=60, seed=5, temperature=0.9, top_p=0.9)
    s = "".join(model.stream("the", max_tokens=60, seed=5, temperature=0.9, top_p=0.9))
    assert a == b == s and len(a) == 60
    assert model.generate("the", max_tokens=60, seed=6) != a


def test_num_samples_are_a_batch_of_different_texts(model):
    outs = model.generate("the", max_tokens=30, seed=3, num_samples=4)
    assert len(outs) == 4 and len(set(outs)) > 1


def test_stop_strings_end_the_sample(model):
    full = model.generate("the", max_tokens=200, seed=2)
    stop = full[20:23]
    cut = model.generate("the", max_tokens=200, seed=2, stop=[stop])
    assert cut == full[: full.index(stop)]
    assert "".join(model.stream("the", max_tokens=200, seed=2, stop=[stop])) == cut


def test_stop_text_holds_back_partial_matches():
    tok = CharTokenizer.train("abcdef")
    st = StopText(tok, ["cde"])
    out = "".join(st.push(i) for i in tok.encode("abcdcdef")) + st.finish()
    assert out == "abcd" and st.done


def test_filters():
    logits = torch.log(torch.tensor([[0.0001, 0.0001, 0.5, 0.3, 0.15, 0.05]]))
    base = GenerateConfig()
    top_k = filter_logits(logits, GenerateConfig(top_k=2), None)
    assert torch.isfinite(top_k).sum() == 2
    top_p = filter_logits(logits, GenerateConfig(top_p=0.7), None)
    assert torch.isfinite(top_p)[0].tolist() == [False, False, True, True, False, False]
    min_p = filter_logits(logits, GenerateConfig(min_p=0.2), None)
    assert torch.isfinite(min_p)[0].tolist() == [False, False, True, True, True, False]
    seen = torch.tensor([[False, False, True, False, False, False]])
    pen = filter_logits(logits, GenerateConfig(repetition_penalty=2.0), seen)
    assert pen[0, 2] < filter_logits(logits, base, None)[0, 2]
    assert filter_logits(logits, base, None)[0, 0] == float("-inf")  # padding never sampled


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 0},
        {"temperature": -1},
        {"top_p": 0},
        {"top_p": 1.5},
        {"top_k": -1},
        {"min_p": 1},
        {"max_tokens": -1},
        {"repetition_penalty": 0},
    ],
)
def test_invalid_options(bad):
    with pytest.raises(LstmTextError):
        GenerateConfig(**bad)


def test_unknown_prompt_characters_still_generate(model):
    assert model.unknown_chars("☃☃") == {"☃"}
    assert len(model.generate("☃☃", max_tokens=10, seed=0)) == 10


def test_empty_prompt_generates(model):
    assert len(model.generate("", max_tokens=10, seed=0)) == 10


def test_int8_generation_and_evaluation(tiny_run, corpus_text):
    fp32, q = lstm_text.load(tiny_run), lstm_text.load(tiny_run, quantize="int8")
    a = q.generate("the ", max_tokens=40, seed=3)
    assert a == q.generate("the ", max_tokens=40, seed=3) and len(a) > 0
    assert [p for p in q.stream("the ", max_tokens=40, seed=3)] and "".join(
        q.stream("the ", max_tokens=40, seed=3)
    ) == a
    text = corpus_text[-3000:]
    b32, b8 = fp32.evaluate(text)["bpc"], q.evaluate(text)["bpc"]
    assert b32 != b8 and abs(b8 - b32) < 0.05 * b32  # measured through the int8 step path, close to fp32


def test_stop_strings_cost_time_linear_in_the_text():
    """A stop string as long as the text, never matched: the old per-token search of every prefix of every stop
    string cost the square of its length per token (minutes here); the KMP automaton reads each character once."""
    tok = CharTokenizer.train("ab")
    stop = "a" * 20_000 + "b"
    st = StopText(tok, [stop, "zz"])
    a = tok.encode("a")[0]
    out = "".join(st.push(a) for _ in range(30_000))
    assert out == "a" * 10_000 and not st.done  # the last 20,000 a's may still start the stop string
    assert st.push(tok.encode("b")[0]) == "" and st.done  # they did: the text ends before them
    assert st.finish() == ""


@pytest.mark.parametrize(
    "stops, text, want",
    [(["cde"], "abcdcdef", "abcd"), (["aab"], "aaab", "a"), (["abab"], "abaababab", "aba"), (["x", "bc"], "abcx", "a")],
)
def test_stop_text_cuts_at_the_first_match(stops, text, want):
    tok = CharTokenizer.train("abcdefx")
    st = StopText(tok, stops)
    assert "".join(st.push(i) for i in tok.encode(text)) + st.finish() == want and st.done


class Collect:
    """A ``infer.batch.Sink`` that keeps what it is given."""

    def __init__(self, n=1):
        self.text, self.finish, self.tokens, self.stop = [""] * n, [None] * n, [0] * n, False

    def piece(self, choice, text):
        self.text[choice] += text

    def done(self, choice, finish, tokens):
        self.finish[choice], self.tokens[choice] = finish, tokens

    def cancelled(self):
        return self.stop


@pytest.mark.parametrize("quantize", ["", "int8"])
def test_batched_rows_give_the_same_text_whatever_else_runs(tiny_run, quantize):
    """Continuous batching: a request's text depends on its own prompt, settings and seed only, not on the rows
    stepped beside it, when they joined, or how long their prompts are (read in chunks between steps); with
    int8 steps (the server's default) too."""
    from lstm_text.infer.batch import BatchGenerator

    model = lstm_text.load(tiny_run, quantize=quantize)
    cfg = GenerateConfig(max_tokens=80, seed=11, temperature=0.9, top_p=0.95)
    alone = BatchGenerator(model.net, model.tokenizer, quantize, prefill_chunk=16)
    want = Collect()
    alone.add("the king", cfg, 1, want)
    while alone:
        alone.step()
    assert want.text[0] == model.generate("the king", max_tokens=80, seed=11, temperature=0.9, top_p=0.95)
    assert want.finish == ["length"] and want.tokens == [80]

    crowd = BatchGenerator(model.net, model.tokenizer, quantize, prefill_chunk=16)
    others = [Collect(3), Collect(), Collect(), Collect()]
    crowd.add("a long prompt, read in chunks " * 5, GenerateConfig(max_tokens=50, seed=1, top_k=3), 3, others[0])
    crowd.add("the", GenerateConfig(max_tokens=200, greedy=True, repetition_penalty=1.3), 1, others[1])
    for _ in range(5):
        crowd.step()
    got = Collect()
    crowd.add("the king", cfg, 1, got)
    crowd.add("and", GenerateConfig(max_tokens=100, seed=2, stop=["e"]), 1, others[2])
    crowd.add("so", GenerateConfig(max_tokens=300, seed=3), 1, others[3])
    for k in range(400):
        if k == 30:
            others[3].stop = True  # its client left: it goes at the next step
        if not crowd:
            break
        crowd.step()
        assert len(crowd) <= 7
    assert got.text == want.text and got.finish == ["length"]
    assert others[0].tokens == [50, 50, 50] and len(set(others[0].text)) > 1  # n=3: seeds 1, 2, 3
    long = "a long prompt, read in chunks " * 5
    assert others[0].text == model.generate(long, max_tokens=50, seed=1, top_k=3, num_samples=3)
    assert others[1].text[0] == model.generate("the", max_tokens=200, greedy=True, repetition_penalty=1.3)
    assert others[2].finish == ["stop"] and "e" not in others[2].text[0]
    assert others[3].finish == ["cancelled"] and 0 < others[3].tokens[0] < 300


def test_generate_returns_the_continuation_and_the_cli_prints_the_prompt_too(tiny_run, capsys):
    import lstm_text

    cont = lstm_text.load(tiny_run).generate("the ", max_tokens=20, seed=4)
    assert main(["generate", str(tiny_run), "the ", "--max-tokens", "20", "--seed", "4"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == "the " + cont


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


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("temperature", float("inf"), "temperature must be a finite number"),
        ("temperature", 1e39, "temperature must be in [0.001, 1000]"),
        ("temperature", 1e-39, "temperature must be in [0.001, 1000]"),
        ("top_p", 1e-46, "top_p must be in [1e-06, 1]"),
        ("top_p", float("nan"), "top_p must be a finite number"),
        ("repetition_penalty", 1e-39, "repetition_penalty must be in [0.001, 1000]"),
    ],
)
def test_sampling_options_that_would_give_nan_probabilities_are_refused(tiny_run, option, value, says):
    """Values that pass `> 0` but overflow float32 logits are refused where the option is defined: Python..."""
    import lstm_text
    from lstm_text.errors import LstmTextError

    with pytest.raises(LstmTextError, match=re.escape(says)) as e:  # Python's own names: top_p, not --top-p
        lstm_text.load(tiny_run).generate("a", max_tokens=2, **{option: value})
    assert e.value.param == option


@pytest.mark.parametrize(
    "flag, value", [("--temperature", "inf"), ("--top-p", "1e-46"), ("--repetition-penalty", "1e-39")]
)
def test_cli_refuses_sampling_options_out_of_range(tiny_run, capsys, flag, value):
    """...and the command line: one line naming the flag, exit 1, nothing on stdout."""
    from lstm_text.cli import main

    assert main(["generate", str(tiny_run), "a", flag, value, "--max-tokens", "3"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and flag in err and "internal error" not in err


def test_uniforms_for_all_rows_at_once_equal_splitmix64_row_by_row():
    from lstm_text.infer.generate import M64, VECTOR_ROWS, _mix, row_key, row_seed, uniforms

    keys = [row_key(row_seed(s, r)) for s in (0, 7, 2**64 - 1) for r in range(3)]
    counts = [0, 1, 2, 10, 1000, 2**40, 5, 6, 2**64 - 2]
    assert len(keys) >= VECTOR_ROWS
    want = [(_mix((k + (c + 1) * 0x9E3779B97F4A7C15) & M64) >> 11) * 2.0**-53 for k, c in zip(keys, counts)]
    for n in (1, 3, len(keys)):  # a few rows as Python integers, more in NumPy
        assert uniforms(keys[:n], counts[:n]).tolist() == want[:n]


class _BytePieces:
    """A tokenizer whose pieces include parts of characters (as SentencePiece's byte fallback has)."""

    pieces = [b"", "\ufffd".encode(), b"a", b" ", "\u00e9".encode(), b"\xc3", b"\xa9", b"\xe2\x82", b"\xac", b"\xff"]
    vocab_size = len(pieces)

    def piece_bytes(self, i):
        return self.pieces[i]


def test_stream_decoder_table_gives_the_incremental_decoders_text():
    """Whole-character pieces come from a table; after a partial character the UTF-8 decoder takes over, so the
    text is the same as decoding every byte incrementally."""
    import codecs
    import random

    from lstm_text.tokenizer import StreamDecoder, piece_texts

    tok = _BytePieces()
    assert piece_texts(tok)[:5] == ["", "\ufffd", "a", " ", "\u00e9"] and piece_texts(tok)[5:] == [None] * 5
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(tok.vocab_size) for _ in range(rng.randrange(1, 30))]
        plain = codecs.getincrementaldecoder("utf-8")("replace")
        dec = StreamDecoder(tok)
        assert [dec.push(i) for i in ids] == [plain.decode(tok.piece_bytes(i)) for i in ids]
        assert dec.flush() == plain.decode(b"", final=True)


def test_int8_steps_give_a_row_the_same_logits_alone_and_batched(tiny_run):
    from lstm_text.infer.step import StepModel

    net = lstm_text.load(tiny_run).net
    step = StepModel(net, "int8")
    g = torch.Generator().manual_seed(0)
    tok = torch.randint(0, net.cfg.vocab_size, (9,), generator=g)
    H = net.cfg.hidden
    state = [(torch.rand(9, H, generator=g) * 2 - 1, torch.randn(9, H, generator=g)) for _ in range(net.cfg.layers)]
    batched, _ = step.step(tok, state)  # (9, V)
    for i in (0, 4, 8):
        alone, _ = step.step(tok[i : i + 1], [(h[i : i + 1], c[i : i + 1]) for h, c in state])
        assert torch.equal(alone[0], batched[i])  # the kernel's input range does not depend on the other rows

import pytest
import torch

import lstm_text
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

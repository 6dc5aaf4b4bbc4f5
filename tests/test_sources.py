"""Training a classifier on several sources at once: short phrases beside long documents (head+tail cuts),
pretrained vectors with only the rows they lack trained, and long lines at inference staying bounded."""

import json
import os
import random
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import lstm_text
from lstm_text.config import ModelConfig, TrainConfig
from lstm_text.data.vectors import WordVectors, vector_vocabulary
from lstm_text.infer.classifier import MAX_TOKENS, cut, encode_lines
from lstm_text.model import LSTMModel
from lstm_text.tokenizer import WordTokenizer
from lstm_text.training.classifier import train_classifier
from lstm_text.training.loop import Interrupted, make_optimizer

POS, NEG = "good great fine nice".split(), "bad awful poor nasty".split()
FILL = "the film was a story and this movie is".split()


def test_cut_keeps_the_first_quarter_and_the_last_three():
    ids = list(range(100))
    assert cut(ids, 8) == [0, 1, 94, 95, 96, 97, 98, 99]
    assert cut(ids, 100) == ids and cut(ids[:5], 8) == ids[:5]
    assert all(len(cut(ids, n)) == n for n in range(4, 100))


def test_a_huge_line_is_encoded_in_bounded_time_with_both_ends():
    tok = WordTokenizer(["start", "end", "word"])
    text = "start " + "word " * 400_000 + "end"  # 2 MB on one line
    seen = []
    encode = tok.encode
    tok.encode = lambda t: seen.append(len(t)) or encode(t)  # the work: what the tokenizer is given
    (ids,) = encode_lines(tok, [text])
    assert seen and max(seen) <= MAX_TOKENS * 16 + 1  # trimmed in characters first, both ends kept
    assert len(ids) == MAX_TOKENS and ids[0] == tok.index["start"] and ids[-1] == tok.index["end"]


def test_vector_vocabulary_puts_the_trained_words_first():
    wv = WordVectors(["the", "good", "bad", "rare", "superb"], np.zeros((5, 3), np.float32))
    data = "the good n't n't n't 90 90 typo superb superb rare".split()
    words, lacking = vector_vocabulary(data, wv, max_words=None, max_vectors=3)
    # lacking the vectors, seen twice or more: most frequent first; then the 3 top vectors, then one the data
    # uses as often (not "rare", seen once)
    assert (words, lacking) == (["n't", "90", "the", "good", "bad", "superb"], 2)
    assert vector_vocabulary(data, wv, max_words=1, max_vectors=3) == (["n't", "the", "good", "bad", "superb"], 1)
    # --tune-vectors 1: the most frequent word with a vector (seen twice or more) trains its row too
    words, trained = vector_vocabulary(data, wv, max_words=None, max_vectors=3, tune=1)
    assert (words[:trained], words[trained:]) == (["n't", "90", "superb"], ["the", "good", "bad"])


def test_train_only_rows_leaves_the_rest_of_the_embedding_and_the_state_dict_alone():
    torch.manual_seed(0)
    cfg = ModelConfig.from_dict(
        dict(vocab_size=50, embed=8, hidden=8, layers=1, labels=["a", "b"], lm_head=False, embed_dropout=0.2)
    )
    net = LSTMModel(cfg)
    keys = set(net.state_dict())
    before = net.embed.weight.detach().clone()
    net.train_only_rows(10)
    opt = make_optimizer(net, TrainConfig(lr=0.1, warmup=0))
    x = torch.randint(1, 50, (4, 12))
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(net.classify(x, torch.full((4,), 12)), torch.tensor([0, 1, 0, 1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = net.embed.weight.detach()
    assert torch.equal(after[10:], before[10:]) and not torch.equal(after[1:10], before[1:10])
    assert set(net.state_dict()) == keys


def _vectors_and_sources(tmp_path, n_phrases=300, n_docs=40, doc_words=600):
    """Polar vectors for POS/NEG, short TSV phrases, and long JSONL documents whose verdict word comes last."""
    rng = np.random.default_rng(0)
    d = 8
    direction = rng.normal(size=d)
    rows = {w: direction * 2 + rng.normal(size=d) * 0.3 for w in POS}
    rows |= {w: -direction * 2 + rng.normal(size=d) * 0.3 for w in NEG}
    rows |= {w: rng.normal(size=d) * 0.3 for w in FILL}
    vec = tmp_path / "vec.txt"
    vec.write_text("".join(f"{w} {' '.join(f'{x:.5f}' for x in v)}\n" for w, v in rows.items()))
    r = random.Random(0)

    def line(lab, n):
        words = [r.choice(FILL) for _ in range(n)] + [r.choice(POS if lab == "positive" else NEG)]
        return " ".join(words)

    labs = [r.choice(["positive", "negative"]) for _ in range(n_phrases + n_docs)]
    (tmp_path / "phrases.tsv").write_text(
        "label\ttext\n" + "".join(f"{lab}\t{line(lab, r.randint(2, 5))}\n" for lab in labs[:n_phrases])
    )
    (tmp_path / "docs.jsonl").write_text(
        "".join(json.dumps({"text": line(lab, doc_words), "label": lab}) + "\n" for lab in labs[n_phrases:])
    )
    return str(vec), [str(tmp_path / "phrases.tsv"), str(tmp_path / "docs.jsonl")]


def test_phrases_and_long_documents_in_one_run(tmp_path):
    vec, data = _vectors_and_sources(tmp_path)
    cfg = TrainConfig(tokenizer="word", normalize=True, batch_size=16, lr=1e-2, warmup=3, epochs=3, seed=0, max_len=64)
    events = {}
    s = train_classifier(
        data, tmp_path / "run", model={"hidden": 8}, train=cfg, vectors=vec, callback=events.setdefault
    )
    assert s["train_examples"] + s["dev_examples"] == 340
    assert 20 * 64 < events["start"]["train_tokens"] <= s["train_examples"] * 64  # documents cut to --max-len
    m = lstm_text.load(tmp_path / "run")
    long_pos = " ".join(["the film was a story"] * 2000 + ["great"])  # the verdict is at the very end
    long_neg = " ".join(["the film was a story"] * 2000 + ["awful"])
    seen = []
    encode = m.tokenizer.encode
    m.tokenizer.encode = lambda t: seen.append(len(t)) or encode(t)  # the work: what the tokenizer is given
    r = m.classify([long_pos, long_neg, "a great film", "an awful film"])
    assert len(seen) == 4 and max(seen) <= MAX_TOKENS * 16 + 1 < len(long_pos)  # long lines trimmed first
    assert [x["label"] for x in r[2:]] == ["positive", "negative"]
    # the verdict 8,000 words in survives the cut: the tail is read
    assert r[0]["probs"]["positive"] > r[1]["probs"]["positive"]


def test_resume_with_vectors_is_bit_exact(tmp_path):
    vec, data = _vectors_and_sources(tmp_path, n_docs=10, doc_words=50)
    cfg = TrainConfig(tokenizer="word", normalize=True, batch_size=16, lr=1e-2, warmup=3, epochs=2, seed=0)
    full = train_classifier(data, tmp_path / "full", model={"hidden": 8}, train=cfg, vectors=vec)

    def sigint_at(event, info):
        if event == "step" and info["step"] == 15:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted):
        train_classifier(data, tmp_path / "cut", model={"hidden": 8}, train=cfg, vectors=vec, callback=sigint_at)
    resumed = train_classifier([], tmp_path / "cut", resume=True)
    assert resumed["steps"] == full["steps"]
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tune_vectors_trains_the_most_frequent_rows_and_keeps_the_rest(tmp_path):
    vec, data = _vectors_and_sources(tmp_path, n_docs=10, doc_words=20)
    cfg = TrainConfig(tokenizer="word", normalize=True, batch_size=16, lr=1e-2, warmup=3, epochs=1, tune_vectors=3)
    train_classifier(data, tmp_path / "run", model={"hidden": 8}, train=cfg, vectors=vec)
    m = lstm_text.load(tmp_path / "run")
    stored, index = m.ckpt.weights["embed.weight"], m.tokenizer.index
    rows = {w.split(" ", 1)[0]: np.array(w.split()[1:], np.float32) for w in open(vec).read().splitlines()}
    words = m.tokenizer.words
    tuned, fixed = words[:3], [w for w in words[3:] if w in rows]
    assert set(tuned) <= set(FILL)  # the filler words are the data's most frequent
    assert all(not np.allclose(stored[index[w]], rows[w], atol=1e-4) for w in tuned)
    assert fixed and all(np.allclose(stored[index[w]], rows[w], atol=1e-5) for w in fixed)


def test_init_from_a_classifier_keeps_its_encoder_and_vectors_for_new_labels(tmp_path):
    """--init with a classifier (the way sentiment3 starts from sentiment): its tokenizer, encoder and word
    vectors, a new head for other labels; the vectors stay fixed and the polarity it knew carries over."""
    vec, data = _vectors_and_sources(tmp_path, n_docs=10, doc_words=20)
    cfg = TrainConfig(tokenizer="word", normalize=True, batch_size=16, lr=1e-2, warmup=3, epochs=3, seed=0)
    train_classifier(data, tmp_path / "base", model={"hidden": 8}, train=cfg, vectors=vec)
    r = random.Random(1)
    labs = [r.choice(["up", "down"]) for _ in range(200)]  # the new data shows two polar words of four each
    rows = [
        (lab, " ".join([r.choice(FILL) for _ in range(3)] + [r.choice((POS if lab == "up" else NEG)[:2])]))
        for lab in labs
    ]
    rows += [("flat", " ".join(r.choice(FILL) for _ in range(4))) for _ in range(100)]
    (tmp_path / "three.tsv").write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    ft = TrainConfig(tokenizer="word", normalize=True, batch_size=16, lr=1e-2, warmup=3, epochs=4, seed=0)
    s = train_classifier([str(tmp_path / "three.tsv")], tmp_path / "ft", init=str(tmp_path / "base"), train=ft)
    base, m = lstm_text.load(tmp_path / "base"), lstm_text.load(tmp_path / "ft")
    assert m.labels == ["down", "flat", "up"] and m.tokenizer.words == base.tokenizer.words
    assert m.cfg.bidirectional == base.cfg.bidirectional and m.cfg.hidden == 8
    assert np.array_equal(m.ckpt.weights["embed.weight"], base.ckpt.weights["embed.weight"])
    assert not np.array_equal(m.ckpt.weights["lstms.0.weight_hh_l0"], base.ckpt.weights["lstms.0.weight_hh_l0"])
    assert s["dev_accuracy"] >= 0.9
    # words the new data never shows still read as polar: what the base model knew carries over
    assert [x["label"] for x in m.classify(["the story was nice", "the story was nasty"])] == ["up", "down"]

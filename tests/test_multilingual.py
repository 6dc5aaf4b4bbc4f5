"""Sentiment in other languages: the built-ins hand the lines langid finds in the built-in ``multilingual``'s
languages to it (``ngram.NgramClassifier``), in Python, on the command line and over HTTP; its features keep every
script; fitting, saving and reading a small one. And English posts: ``sentiment3`` joins its LSTM and
``multilingual``'s English weights (``ngram.Companion``)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from test_langid import GEORGIAN, LINES

import lstm_text
from lstm_text import langid, ngram
from lstm_text.cli import main
from lstm_text.errors import LstmTextError

# One positive and one negative everyday line in a few languages (written for this test)
PAIRS = {
    "de": ("Super, ich liebe es! Danke!", "Das war furchtbar, ich bin sehr enttäuscht."),
    "es": ("Me encanta, es una maravilla, gracias!", "Qué asco, el peor servicio, nunca más."),
    "ko": ("정말 재미있고 감동적인 영화 최고예요", "최악의 영화 돈 아깝다 시간 낭비"),
    "zh": ("质量很好，非常满意，推荐购买", "太差了，质量很烂，不推荐"),
}


@pytest.fixture(scope="module")
def models():
    return {name: lstm_text.load(name) for name in ("sentiment", "sentiment3")}


def test_every_language_gets_a_label_from_the_builtins(models):
    texts = [t for lang, t in LINES.items() if lang != "en"]
    for name, m in models.items():
        found = [lang for lang, _ in langid.identify(texts)]
        r = m.classify(texts)
        assert [x["lang"] for x in r] == found
        assert all(x["label"] in m.labels and abs(sum(x["probs"].values()) - 1) < 1e-5 for x in r), name
        assert set(ngram.builtin().langs) <= set(m.languages) and m.languages[0] == "en"


def test_clear_lines_get_the_right_label(models):
    for lang, (good, bad) in PAIRS.items():
        for name, m in models.items():
            r = m.classify([good, bad])
            assert [x["lang"] for x in r] == [lang, lang]
            assert [x["label"] for x in r] == ["positive", "negative"], (name, lang, r)


def test_binary_model_reads_negative_and_positive_of_the_three():
    m3 = ngram.builtin()
    m2 = lstm_text.load("sentiment")
    text = PAIRS["de"][0]
    p3 = dict(zip(m3.labels, m3.probs([text], ["de"])[0].tolist()))
    p2 = m2.classify(text)["probs"]
    assert set(p2) == {"negative", "positive"}
    assert p2["positive"] == pytest.approx(p3["positive"] / (p3["positive"] + p3["negative"]), rel=1e-5)


def test_explain_uses_the_model_that_reads_the_line(models):
    m = models["sentiment3"]
    words = m.explain(PAIRS["de"][0])
    assert [w for w, _ in words] == PAIRS["de"][0].split() and any(abs(x) > 1e-3 for _, x in words)


def test_cli_and_http_answer_other_languages(monkeypatch, capsys):
    lines = [PAIRS["de"][0], PAIRS["ko"][1], GEORGIAN, "Can't wait for the game tonight, so excited!!"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["classify", "--model", "sentiment3", "-f", "jsonl"]) == 0
    out, err = capsys.readouterr()
    recs = [json.loads(x) for x in out.splitlines()]
    assert [(r["lang"], r["label"]) for r in recs] == [
        ("de", "positive"), ("ko", "negative"), ("unknown", None), ("en", "positive")
    ]  # fmt: skip
    assert "(unknown 1)" in err
    from fastapi.testclient import TestClient

    from lstm_text.serve.app import create_app

    with TestClient(create_app({"sentiment3": lstm_text.load("sentiment3")})) as client:
        r = client.post("/v1/classify", json={"texts": lines})
    assert r.status_code == 200, r.text
    assert [(x["lang"], x["label"]) for x in r.json()["results"]] == [(r["lang"], r["label"]) for r in recs]
    assert r.json()["results"][3]["score"] == pytest.approx(recs[3]["score"], abs=1e-6)  # both models over HTTP too


# every script the data holds: Hangul, Han, Thai (no spaces), Arabic, Ge'ez, Devanagari, Vietnamese, emoji
SCRIPTS = [LINES["ko"], LINES["zh"], LINES["th"], LINES["ar"], LINES["am"], "यह फिल्म बहुत अच्छी है", LINES["vi"],
           "Great 😍😍 👍🏽 film"]  # fmt: skip


@pytest.mark.parametrize("text", SCRIPTS)
def test_features_keep_every_character_of_every_script(text):
    read = ngram.text_of(text)
    assert read == " ".join(text.split()).lower()  # nothing dropped, nothing changed but case
    m = ngram.NgramClassifier(np.zeros((1 + 2**20, 3)), np.zeros(1 + 2**20), np.zeros((1, 3)), ["a", "b", "c"],
                              ["xx"], [20], (1,))  # fmt: skip
    ids, offsets = m.rows([text], ["xx"])
    assert (offsets == 0).all() and len(ids) == len(read) + 4  # a 1-gram per character, two spaces, two ends
    assert (ids != 0).sum() == len(read) + 2 and ids.max() <= 2**20  # the ends are no n-gram; all in xx's rows
    assert len(set(ids.tolist()) - {0}) == len(set(read) | {" "})  # each distinct character its own row
    none, _ = m.rows([text], ["yy"])
    assert not none.any()  # a language without rows reads nothing


def test_links_and_mentions_are_not_read():
    assert ngram.text_of("@user  Loved it!! https://t.co/xyz &amp; more") == "loved it!! more"


def _toy():
    rng = np.random.default_rng(0)
    good, bad = ["great", "lovely", "wunderbar", "super"], ["awful", "terrible", "furchtbar", "schlecht"]
    texts, langs, labels = [], [], []
    for i in range(400):
        lang = "de" if i % 2 else "en"
        y = ["negative", "positive"][i % 4 // 2]
        words = list(rng.choice(good if y == "positive" else bad, 2)) + list(rng.choice(["the", "das", "film"], 2))
        texts.append(" ".join(words))
        langs.append(lang)
        labels.append(y)
    return texts, langs, labels


def test_fit_learns_saves_and_reads(tmp_path):
    texts, langs, labels = _toy()
    m = ngram.fit(texts, langs, labels)
    assert m.labels == ["negative", "positive"] and m.langs == ["de", "en"] and m.bits == [ngram.MIN_BITS] * 2
    p = m.probs(["wunderbar super", "awful terrible", ""], ["de", "en", "en"])
    assert p.shape == (3, 2) and np.allclose(p.sum(1), 1)
    assert p[0, 1] > 0.8 and p[1, 0] > 0.8
    m.save(tmp_path / "m.safetensors")
    back = ngram.NgramClassifier.read(tmp_path / "m.safetensors")
    assert back.labels == m.labels and back.langs == m.langs and back.bits == m.bits
    assert np.array_equal(back.probs(texts[:20], langs[:20]), m.probs(texts[:20], langs[:20]))  # as fit made it
    assert back.weight.dtype == np.int8 and back.idf.dtype == np.uint8
    # each language has weights of its own: the same words read as another language score otherwise
    assert not np.allclose(m.probs(["das film"], ["de"]), m.probs(["das film"], ["en"]))
    assert np.allclose(m.probs(["great"], ["xx"]), 0.5)  # a language it has no weights for: no opinion


def test_quantized_scores_match_the_float_model_and_each_language_is_built_when_first_read(tmp_path):
    rng = np.random.default_rng(2)
    C, bits = 3, [10, 12]
    R = 1 + sum(2**b for b in bits)
    idf = rng.uniform(1, 9, R).astype(np.float32)
    idf[0] = idf[5] = 0.0  # no n-gram; an n-gram too rare to weigh
    m = ngram.NgramClassifier(rng.normal(size=(R, C)).astype(np.float32), idf, rng.normal(size=(2, C)).astype(
        np.float32), ["a", "b", "c"], ["de", "ko"], bits)  # fmt: skip
    q = m.quantized()
    assert q.weight.dtype == np.int8 and q.idf.dtype == np.uint8 and q.idf[5] == 0 and q.quantized() is q
    texts, langs = ["Hallo hallo Welt, wie geht's?", "좋아요! 정말 최고예요"], ["de", "ko"]
    assert np.allclose(q.logits(texts, langs), m.logits(texts, langs), atol=0.03)
    q.save(tmp_path / "q.safetensors")
    fresh = ngram.NgramClassifier.read(tmp_path / "q.safetensors")
    fresh.logits(texts[:1], ["de"])
    assert fresh._filled.tolist() == [True, False]  # Korean's rows not built until a Korean line comes
    assert np.array_equal(fresh.logits(texts, langs), q.logits(texts, langs))


def test_a_label_a_language_lacks_is_never_answered_there():
    texts, langs, labels = _toy()
    texts, langs, labels = texts + ["so so", "meh ok"] * 20, langs + ["de"] * 40, labels + ["neutral"] * 40
    m = ngram.fit(texts, langs, labels)
    assert m.labels == ["negative", "neutral", "positive"]
    p = m.probs(["so so meh", "so so meh"], ["de", "en"])
    assert p[0].argmax() == 1 and p[1, 1] < 1e-9  # English lines never had neutral


def test_scores_are_the_tfidf_sums_numpy_and_compiled_alike(monkeypatch):
    rng = np.random.default_rng(1)
    C, bits = 3, [10, 12]
    R = 1 + sum(2**b for b in bits)
    idf = rng.uniform(0, 3, R).astype(np.float32)
    idf[0] = 0.0  # row 0 is no n-gram
    m = ngram.NgramClassifier(rng.normal(size=(R, C)).astype(np.float32), idf, rng.normal(size=(2, C)).astype(
        np.float32), ["a", "b", "c"], ["de", "ko"], bits, (1, 2, 3))  # fmt: skip
    texts, langs = ["Hallo hallo Welt", "좋아요!", "", "x"], ["de", "ko", "de", "en"]
    ids, offsets = m.rows(texts, langs)
    want = []
    for k in range(len(texts)):
        bag = [i for i in ids[offsets[k] : offsets[k + 1] if k + 1 < len(texts) else len(ids)] if i]
        if langs[k] not in m.langs:
            assert not bag
            want.append(np.zeros(C))
            continue
        norm = np.sqrt(sum(m.idf[i] ** 2 for i in bag))  # every n-gram counts: a row met twice, twice
        want.append(sum(m.weight[i] * m.idf[i] for i in bag) / norm + m.bias[m.langs.index(langs[k])])
    assert np.allclose(m.logits(texts, langs), want, atol=1e-4)
    monkeypatch.setattr(ngram, "_cell", None)
    assert np.allclose(m.logits(texts, langs), want, atol=1e-4)


def test_bad_files_and_inputs_are_clear_errors(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(LstmTextError, match="is not an n-gram classifier"):
        ngram.NgramClassifier.read(bad)
    with pytest.raises(LstmTextError, match="one length"):
        ngram.fit(["a"], ["en", "de"], ["positive"])
    with pytest.raises(LstmTextError, match="at least two classes"):
        ngram.fit(["a", "b"], ["en", "en"], ["positive", "positive"])


def test_builtin_card_is_current_and_flags_restricted_sources():
    from lstm_text.pretrained import HERE

    m = ngram.builtin()
    shipped = (HERE / ngram.NAME / "README.md").read_text(encoding="utf-8")
    assert shipped == ngram.card(m), "benchmarks/multilingual_fit.py writes the card again"
    assert shipped.count("RESTRICTED") == 2 and "dev macro-F1" in shipped
    assert len(m.facts["dev"]) == 28 and m.facts["dev_mean_macro_f1"] > 0.6
    info = lstm_text.load("sentiment3").info()["card"]
    assert "multilingual" in info["data"] and info["language"].startswith("en, ")


def test_companion_reads_other_languages_alone_and_joins_on_shared_ones():
    texts, langs, labels = _toy()
    m = ngram.fit(texts, langs, labels)
    c = ngram.Companion(m, own=("en",), mix=0.25)
    assert c.langs == ["de"] and c.shared == ["en"]
    assert ngram.Companion(m, own=("en",)).shared == []  # mix 0: it leaves English to the other model
    lines, read_as = ["great film", "furchtbar das"], ["en", "de"]
    q = c.probs(lines, read_as, ["positive", "negative"])  # over the other model's labels, in its order
    assert np.allclose(q, m.probs(lines, read_as)[:, ::-1])
    p = np.array([[0.9, 0.1], [0.6, 0.4]])  # the other model's: it finds both lines positive
    joined = c.join(p, lines, read_as, ["positive", "negative"])
    want = p[0] ** 0.75 * q[0] ** 0.25
    assert np.allclose(joined[0], want / want.sum()) and np.array_equal(joined[1], p[1])  # German: not joined
    assert np.array_equal(p, [[0.9, 0.1], [0.6, 0.4]])  # the caller's array is left as it was


def test_sentiment3_reads_english_with_both_models_sentiment_with_its_own(models):
    from lstm_text.infer.classifier import encode_lines

    line = "omg this new phone is amazing, best purchase ever!!"
    for name, m in models.items():
        lstm = m.classifier.probs(encode_lines(m.tokenizer, [line]))
        got = np.array([m.classify(line)["probs"][c] for c in m.labels])
        assert np.allclose(m.read([line])[0], got, atol=1e-6)  # what evaluate and explain read
        if m.companion.mix:
            q = m.companion.probs([line], ["en"], m.labels)
            want = lstm[0] ** (1 - m.companion.mix) * q[0] ** m.companion.mix
            assert np.allclose(got, want / want.sum(), atol=1e-6), name
        else:
            assert np.allclose(got, lstm[0], atol=1e-6), name
    assert models["sentiment3"].companion.mix > 0 and models["sentiment"].companion.mix == 0
    words = models["sentiment3"].explain(line)  # occlusion through both models, as classify reads the line
    assert [w for w, _ in words] == line.split() and max(words, key=lambda x: x[1])[0] in ("amazing,", "best")


# Everyday English posts (written for this test): opinions are not neutral, plain facts are
TWEETS = {
    "@user I love this new album so much, best thing all year!! #blessed": "positive",
    "Can't wait for the game tonight, so excited!!": "positive",
    "ugh my flight got cancelled again, this airline is a joke": "negative",
    "Worst customer service ever @user, still waiting 3 hours for a reply. Never again": "negative",
    "The meeting is scheduled for 3 pm on Friday in room 204.": "neutral",
    "the train leaves at 7 tomorrow morning from platform 2": "neutral",
}


def test_sentiment3_reads_opinionated_posts_and_plain_facts(models):
    r = models["sentiment3"].classify(list(TWEETS))
    assert [x["label"] for x in r] == list(TWEETS.values()) and {x["lang"] for x in r} == {"en"}

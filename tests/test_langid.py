"""Language ID: the built-in langid names each language it knows; classify answers every line's "lang" and gives no
label to a line in a language the model does not read (with a notice), in Python, on the command line and over HTTP."""

from __future__ import annotations

import io
import json

import pytest

import lstm_text
from lstm_text import langid
from lstm_text.cli import main

# One everyday line per language langid knows (written for this test, not taken from its data).
LINES = {
    "am": "ይህ ፊልም በጣም ጥሩ ነው፣ ሁላችሁም እዩት",
    "ar": "الخدمة في هذا المطعم سيئة جدا ولن أعود إليه مرة أخرى",
    "arq": "واش راك خويا، راني فرحان بزاف بلي جيت",
    "ary": "والله العظيم هاد الشي ماشي معقول، بزاف عليا",
    "de": "Das Essen war ausgezeichnet und der Service sehr freundlich.",
    "en": "What a wonderful film, I loved every minute of it.",
    "es": "Me encanta este restaurante, la comida es deliciosa.",
    "fr": "Je suis vraiment content de ce film, il est magnifique.",
    "ha": "Allah ya kara maka lafiya, mun gode sosai da wannan aiki",
    "hi": "yaar yeh movie bahut acchi hai, mujhe bahut pasand aayi",  # the tweets it learned from are romanised
    "id": "Makanannya enak sekali dan pelayanannya sangat ramah.",
    "ig": "Chineke gozie gị nke ukwuu, ọ dị mma nke ukwuu",
    "it": "Questo film è bellissimo, lo consiglio a tutti quanti.",
    "ko": "이 영화 정말 재미있어요 강력 추천합니다",
    "pcm": "Abeg wetin dey sup, I no fit shout, dem don chop my money finish",
    "pl": "Lekarz był bardzo miły i cierpliwy, polecam wszystkim.",
    "pt": "Eu adorei o filme, foi muito bom mesmo, recomendo.",
    "rw": "Murakoze cyane, Imana ibahe umugisha mwese",
    "sw": "Serikali inapaswa kuwasaidia wananchi wake kwa haraka",
    "th": "ร้านนี้อาหารอร่อยมากและบริการดีมากครับ",
    "ts": "Ndza khensa swinene, Xikwembu xi mi katekisa hinkwenu",
    "tw": "Ɛyɛ me dɛ sɛ me hunu wo nnɛ, me da wo ase paa",
    "vi": "Giảng viên dạy rất nhiệt tình và dễ hiểu.",
    "yo": "Ẹ kú iṣẹ́ o, Ọlọ́run á bùkún yín lọ́pọ̀lọpọ̀",
    "zh": "这家酒店的服务非常好，房间也很干净。",
}
GEORGIAN = "ეს ფილმი ძალიან კარგია, ყველას გირჩევთ"
CHEROKEE = "ᎣᏏᏲ ᏙᎯᏧ ᎤᏬᏚᎯᏍᏗ ᎠᏂᏴᏫᏯ"


@pytest.fixture(scope="module")
def sentiment():
    return lstm_text.load("sentiment")


# The pairs langid confuses most (benchmarks/README.md, "Language ID"): Moroccan Arabic is often named Algerian,
# and Nigerian Pidgin, written in English spelling, English (which reads it: langid.ALSO_READ).
CLOSE = {"ary": "arq", "pcm": "en"}


def test_langid_knows_every_language_it_names():
    assert sorted(LINES) == sorted(langid.languages())
    found = {lang: got for (got, _), lang in zip(langid.identify(list(LINES.values())), LINES)}
    assert {lang: got for lang, got in found.items() if got != CLOSE.get(lang)} == {
        lang: lang for lang in LINES if found[lang] != CLOSE.get(lang)
    }
    assert len([lang for lang in LINES if found[lang] == lang]) >= len(LINES) - len(CLOSE)


def test_unseen_scripts_and_lines_without_letters():
    found = [lang for lang, _ in langid.identify([GEORGIAN, CHEROKEE, "😍😍 10/10 !!!", "   "])]
    assert found == [langid.UNKNOWN, langid.UNKNOWN, langid.NO_TEXT, langid.NO_TEXT]


def test_lines_in_unknown_scripts_get_no_label_english_keeps_its_own(sentiment):
    en, de, ko = LINES["en"], LINES["de"], LINES["ko"]
    r = sentiment.classify([en, de, ko, GEORGIAN, CHEROKEE, "", "👍👍"])
    assert [x["lang"] for x in r] == ["en", "de", "ko", "unknown", "unknown", "zxx", "zxx"]
    assert [x["label"] for x in r[3:6]] == [None] * 3 and [x["score"] for x in r[3:6]] == [None] * 3
    assert r[0]["label"] == "positive" and r[6]["label"] is not None  # emoji are read (as words)
    assert r[1]["label"] and r[2]["label"]  # read by the built-in multilingual (tests/test_multilingual.py)
    from lstm_text.infer.classifier import classify_stream

    ((_, ungated),) = classify_stream(sentiment.classifier, sentiment.tokenizer, [en])
    assert r[0]["probs"] == ungated["probs"]  # the gate changes nothing of a line it lets through


def test_a_model_without_a_companion_gives_other_languages_no_label(sentiment, monkeypatch):
    monkeypatch.setattr(sentiment, "companion", None)
    monkeypatch.setattr(sentiment, "_gate", langid.Gate(["en"]))
    r = sentiment.classify([LINES["en"], LINES["de"], LINES["ko"]])
    assert [x["lang"] for x in r] == ["en", "de", "ko"] and [x["label"] is None for x in r] == [False, True, True]


def test_a_model_without_a_recorded_language_answers_every_line(sentiment, monkeypatch):
    monkeypatch.setattr(sentiment, "_gate", langid.Gate([]))
    r = sentiment.classify([LINES["de"], LINES["ko"], GEORGIAN])
    assert [x["lang"] for x in r] == ["de", "ko", "unknown"] and all(x["label"] for x in r)


def test_cli_lang_column_jsonl_and_notice(monkeypatch, capsys):
    lines = [LINES["en"], GEORGIAN, "", LINES["ko"], GEORGIAN]
    stdin = "\n".join(lines) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["classify"]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].startswith("positive\t") and rows[0].count("\t") == 2  # no language column without --lang
    assert rows[1] == f"\t\t{GEORGIAN}" and rows[2] == "\t\t" and rows[3].split("\t")[0] in ("negative", "positive")
    assert err.startswith("notice: 2 lines in languages this model does not read (unknown 2) got no label; it reads ")
    for fmt in ("text", "tsv"):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        assert main(["classify", "--lang", "-f", fmt]) == 0
        rows = [r.split("\t") for r in capsys.readouterr().out.splitlines()]
        assert [r[2] for r in rows] == ["en", "unknown", "zxx", "ko", "unknown"] and [r[3] for r in rows] == lines
        assert rows[1][:2] == ["", ""]
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["classify", "-f", "jsonl"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["lang"] for r in recs] == ["en", "unknown", "zxx", "ko", "unknown"]
    assert recs[1]["label"] is None and recs[1]["score"] is None and recs[0]["label"] == "positive"


def test_http_classify_answers_lang():
    from fastapi.testclient import TestClient

    from lstm_text.serve.app import create_app

    with TestClient(create_app({"sentiment": lstm_text.load("sentiment")})) as client:
        texts = [LINES["en"], GEORGIAN, "", LINES["ko"]]
        r = client.post("/v1/classify", json={"texts": texts, "explain": True})
    assert r.status_code == 200, r.text
    en, ka, empty, ko = r.json()["results"]
    assert (en["lang"], en["label"]) == ("en", "positive") and en["explain"]
    assert ka == {"text": GEORGIAN, "label": None, "score": None, "probs": {}, "lang": "unknown", "explain": []}
    assert empty["lang"] == "zxx" and ko["lang"] == "ko" and ko["label"] in ("negative", "positive") and ko["explain"]


def test_builtin_langid_card_is_current_and_flags_restricted_sources():
    from lstm_text.pretrained import HERE

    m = langid._langid()
    shipped = (HERE / langid.NAME / "README.md").read_text(encoding="utf-8")
    assert shipped == langid.card(m), "benchmarks/langid_fit.py writes the card again"
    assert shipped.count("RESTRICTED") == 2 and "dev accuracy" in shipped and all(c in shipped for c in LINES)
    assert m.facts["dev_accuracy"] > 0.95


def test_fit_tells_two_scripts_and_two_spellings_apart(tmp_path):
    heads = ["the cat sat on the mat", "where is the dog", "der hund ist hier", "wo ist die katze"] * 20
    heads += ["고양이가 매트에 앉았다", "개는 어디에 있나요"] * 20
    langs = ["en", "en", "de", "de"] * 20 + ["ko", "ko"] * 20
    m = langid.fit(heads, langs, epochs=3, seed=0)
    assert m.labels == ["de", "en", "ko"]
    assert [m.labels[i] for i in m.probs(["the dog sat", "die katze ist", "개가 앉았다"]).argmax(1)] == [
        "en",
        "de",
        "ko",
    ]
    m.save(tmp_path / "l.safetensors")
    again = langid.Langid.read(tmp_path / "l.safetensors")
    assert again.labels == m.labels and (again.scripts == m.scripts).all()
    letters, seen, shares = again.letters(["der hund", "개가 abc", "ქართ"])  # no "b" in the training lines
    assert letters.tolist() == [7, 5, 4] and seen.tolist() == [7, 4, 0] and again.script_names == ["HANGUL", "LATIN"]
    assert shares.tolist() == [[0, 1], [0.4, 0.4], [0, 0]] and again.writes.tolist() == [[0, 1], [0, 1], [1, 0]]
    assert again.probs(["movie movie"])[0, 2] == 0  # Korean does not write Latin letters
    assert langid.features(["ab"], (1, 2), 8)[1].tolist() == [0]  # one line: its n-grams start at 0


def test_not_a_langid_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(lstm_text.LstmTextError, match="not a langid model"):
        langid.Langid.read(bad)
    with pytest.raises(lstm_text.LstmTextError, match="heads"):
        langid.fit([], [])


def test_gate_hands_lines_in_a_second_models_languages_to_it():
    gate = langid.Gate(["en"], also=["de", "ko", "pcm"])
    got = gate([LINES["en"], LINES["de"], LINES["ko"], LINES["fr"], GEORGIAN, ""])
    assert [lang for lang, _ in got] == ["en", "de", "ko", "fr", "unknown", "zxx"]
    assert [who for _, who in got] == [gate.OWN, gate.ALSO, gate.ALSO, gate.REFUSED, gate.REFUSED, gate.OWN]
    assert [who for _, who in langid.Gate(["en"])([LINES["de"], LINES["pcm"]])] == [gate.REFUSED, gate.OWN]

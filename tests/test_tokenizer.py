import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_text.tokenizer import UNK, CharTokenizer, StreamDecoder, tokenizer_from_dict, train_tokenizer

TEXT = st.text(st.characters(codec="utf-8"), max_size=200)


@given(TEXT)
def test_char_round_trip_on_its_own_alphabet(text):
    tok = CharTokenizer.train(text)
    assert tok.decode(tok.encode(text)) == text


@given(TEXT, TEXT)
def test_char_unknown_characters_map_to_unk(train, other):
    tok = CharTokenizer.train(train)
    ids = tok.encode(other)
    assert len(ids) == len(other)
    assert all(i == UNK for i, c in zip(ids, other) if c not in set(train))
    assert all(0 <= i < tok.vocab_size for i in ids)


def test_char_vocab_size_keeps_most_frequent():
    tok = CharTokenizer.train("aaaabbbc", vocab_size=4)
    assert tok.vocab_size == 4 and tok.encode("c") == [UNK]


_SP = {}


def sp(kind, corpus_text):
    if kind not in _SP:
        _SP[kind] = train_tokenizer(corpus_text, kind, 400)
    return _SP[kind]


@settings(max_examples=60, deadline=None)
@given(TEXT)
def test_sentencepiece_round_trips_arbitrary_unicode(corpus_text, text):
    for kind in ("bpe", "unigram"):
        tok = sp(kind, corpus_text)
        assert tok.decode(tok.encode(text)) == text


@settings(max_examples=40, deadline=None)
@given(TEXT)
def test_stream_decoder_equals_decode(corpus_text, text):
    tok = sp("bpe", corpus_text)
    ids = tok.encode(text)
    dec = StreamDecoder(tok)
    assert "".join(dec.push(i) for i in ids) + dec.flush() == tok.decode(ids)


def test_tokenizers_survive_serialisation(corpus_text):
    for tok in (CharTokenizer.train(corpus_text), sp("bpe", corpus_text), sp("unigram", corpus_text)):
        again = tokenizer_from_dict(tok.to_dict())
        assert again.encode(corpus_text[:500]) == tok.encode(corpus_text[:500])
        assert again.vocab_size == tok.vocab_size


def test_bpe_compresses(corpus_text):
    tok = sp("bpe", corpus_text)
    assert len(tok.encode(corpus_text)) < len(corpus_text) / 2


# Every script of the multilingual data (issue 24), Thai without spaces, Vietnamese composed and decomposed.
SCRIPTS = {
    "Hangul": "이 영화 정말 재미있어요 강력 추천합니다",
    "Han": "这家酒店的服务非常好，房间也很干净。",
    "Thai": "ร้านนี้อาหารอร่อยมากและบริการดีมากครับ",
    "Arabic": "الخدمة في هذا المطعم سيئة جدا ولن أعود",
    "Ge'ez": "ይህ ፊልም በጣም ጥሩ ነው፣ ሁላችሁም እዩት",
    "Devanagari": "यह फिल्म बहुत अच्छी है, मुझे पसंद आई",
    "Vietnamese": "Giảng viên dạy rất nhiệt tình và dễ hiểu.",
    "Vietnamese NFD": unicodedata.normalize("NFD", "Giảng viên dạy rất nhiệt tình và dễ hiểu."),
    "emoji": "great 😍👍🏽 👨‍👩‍👧 🇰🇷 ❤️",
}


def test_every_script_round_trips_with_char_and_unigram(corpus_text):
    mixed = "\n".join(SCRIPTS.values()) * 3
    toks = {
        "char": train_tokenizer(mixed, "char"),
        "unigram on these scripts": train_tokenizer(corpus_text + mixed, "unigram", 1000),
        "unigram that never saw them (byte fallback)": sp("unigram", corpus_text),
    }
    for name, tok in toks.items():
        for script, text in SCRIPTS.items():
            ids = tok.encode(text)
            assert UNK not in ids, (name, script)
            assert tok.decode(ids) == text, (name, script)

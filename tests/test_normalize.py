"""normalize: raw text and SST's tokenized text meet in one canonical form; detokenize/capitalise invert SST."""

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_text.normalize import _EMOJI_WORDS, NORMALIZER, normalize

from sst import capitalise, detokenize

SST_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "dev.tsv"

# (raw text as people type it, the same in SST's published tokenization)
MEET = [
    ("Doesn't work!!!", "does n't work ! ! !"),
    ("WORST customer service EVER", "worst customer service ever"),
    ("It's great, isn't it?", "it 's great , is n't it ?"),
    ("I can't believe it won't end.", "i ca n't believe it wo n't end ."),
    (
        "They've seen it; you'll see, he'd say we're fine, I'm sure.",
        "they 've seen it ; you 'll see , he 'd say we 're fine , i 'm sure .",
    ),
    ("(Director) O'Fallon", "-lrb- director -rrb- o'fallon"),
    ('He said "wow".', "he said `` wow '' ."),
    ("It’s “great” and ‘clever’", "it 's `` great '' and ` clever '"),
    ("The writer/director's cut", "the writer\\/director 's cut"),
    ("Wait... what?", "wait ... what ?"),
    ("A well-acted, 3.5-star film; 10,000 fans at 3pm", "a well-acted , 3.5-star film ; 10,000 fans at 3pm"),
    ("dont doesnt didnt isnt wasnt cant wont", "do n't does n't did n't is n't was n't ca n't wo n't"),
    ("wouldnt couldnt shouldnt aint im cannot", "would n't could n't should n't ai n't i 'm can not"),
    ("Soooo goooood", "soo good"),
    ("A mess—a glorious mess", "a mess -- a glorious mess"),
    ("the U.S. version, etc.", "the u.s. version , etc."),
    ("ＧＲＥＡＴ！", "great !"),
]


@pytest.mark.parametrize("raw, sst", MEET)
def test_raw_and_sst_text_meet(raw, sst):
    assert normalize(raw) == normalize(sst)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Doesn't work!!!", "does n't work ! ! !"),
        ("great!", "great !"),
        ("good,bad", "good , bad"),
        ("!!!!!!", "! ! !"),
        ("! ! ! ! ! !", "! ! !"),
        ("really?!", "really ? !"),
        ("wait.....", "wait ..."),
        ("good cool", "good cool"),
        ("soooo goooood", "soo good"),
        ("3.5 3pm 10,000 k-19 o'fallon", "3.5 3pm 10,000 k-19 o'fallon"),
        ("it's can't won't i'm they've you'll he'd we're", "it 's ca n't wo n't i 'm they 've you 'll he 'd we 're"),
        ("  lots\tof \n space  ", "lots of space"),
        ("", ""),
    ],
)
def test_canonical_form(text, expected):
    assert normalize(text) == expected


POSITIVE = {"smile", "happy", "love", "wink"}
NEGATIVE = {"sad", "crying", "angry", "heartbroken"}


@pytest.mark.parametrize("emoticon", [":)", ":-)", ":D", ";)", "<3", "=)", ":))"])
def test_positive_emoticons_become_positive_words(emoticon):
    assert normalize(f"great{emoticon}").split()[1] in POSITIVE
    assert normalize(f"loved it {emoticon} !").split()[2] in POSITIVE


@pytest.mark.parametrize("emoticon", [":(", ":-(", ":'(", ">:(", "</3"])
def test_negative_emoticons_become_negative_words(emoticon):
    assert normalize(f"hated it {emoticon}").split()[2] in NEGATIVE


def test_emoticon_lookalikes_stay_text():
    assert normalize("at 3:30, rated 1<3") == "at 3:30 , rated 1 < 3"
    assert normalize("the following: (a) and (b)") == "the following : ( a ) and ( b )"


@pytest.mark.parametrize(
    "emoji, word",
    [
        ("😍", "love"),
        ("🔥", "awesome"),
        ("👍", "good"),
        ("👎", "bad"),
        ("😡", "angry"),
        ("🤮", "disgusting"),
        ("😭", "crying"),
        ("💩", "crap"),
        ("❤️", "love"),
        ("😂", "funny"),
    ],
)
def test_emoji_carry_sentiment(emoji, word):
    assert normalize(f"I LOVE this phone {emoji}") == f"i love this phone {word}"


def test_emoji_table():
    assert len(_EMOJI_WORDS) >= 150
    assert "love" in normalize("😍🔥").split() and "awesome" in normalize("😍🔥").split()
    for emoji, words in _EMOJI_WORDS.items():
        assert normalize(emoji) == words.strip(), emoji  # every entry is reachable and plain words


def test_skin_tones_and_variation_selectors_ignored():
    assert normalize("👍🏽") == normalize("👍🏿") == normalize("👍") == "good"
    assert normalize("❤️") == normalize("❤") == normalize("♥") == "love"
    assert normalize("great👏🏻👏🏻") == "great bravo bravo"


def test_unknown_pictographs_become_spaces():
    assert normalize("hi🦄there") == "hi there"
    assert normalize("🇺🇸 🏠 ⚽ 👨‍👩‍👧") == ""
    assert normalize("ok\ufffd\x00go") == "ok go"


def test_urls_emails_mentions_hashtags():
    assert normalize("see https://example.com/a?b=1. Great!") == "see url . great !"
    assert normalize("www.imdb.com/title/tt0111161 and amazon.com") == "url and url"
    assert normalize("mail Me.Name+x@Example.co.uk now") == "mail email now"
    assert normalize("@JohnDoe you rock") == "@user you rock"
    assert normalize("#Love this #1 show") == "love this # 1 show"


def test_html():
    assert normalize("great<br />movie<br><br/>ever") == "great movie ever"
    assert normalize("<p>so <b>bad</b></p>") == "so bad"
    assert normalize("Tom &amp; Jerry &quot;rocks&quot; &#39;n&#39; rolls") == "tom & jerry \" rocks \" ' n ' rolls"
    assert normalize("&lt;3 it") == "love it"


def test_unicode():
    assert normalize("Ｆｕｌｌｗｉｄｔｈ … ﬁne") == "fullwidth ... fine"
    assert normalize("naïve café") == normalize("nai\u0308ve cafe\u0301")
    assert normalize("don´t") == "do n't"


# Idempotence: normalising canonical text changes nothing. Random Unicode, and fragments chosen to collide.
FRAGMENTS = list("abdimnostu'`\"-.,:;!?()<>/\\*@#&_^=3 \n") + [
    *("n't 's 're -lrb- -rrb- `` '' &amp; &lt; &#39; <br /> http:// www. .com dont im u.s. mr. cannot".split()),
    *(":) :-( <3 </3 :d -_- ^_^ xx ooo @user #x 3.5 10,000 ... -- i.e.".split()),
    *"😍 👍 🏽 \ufe0f \u200d ’ “ … — ´ é \u0301 İ Σ ß ﬁ Ａ ᄀ ᅡ \x00 \ufffd \xa0 \u200b".split(),
]
texts = st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_chunk_by_chunk_equals_the_whole_text(text):
    """``normalize`` tokenizes each whitespace-separated chunk alone (and caches it): the same tokens as the
    steps run over the whole text."""
    from lstm_text.normalize import (
        _DASHES,
        _DOTS,
        _NO_APOSTROPHE,
        _REPEATS,
        _TOKEN,
        _split_clitics,
        _two,
        chunk_tokens,
    )

    text = text.lower()
    whole = _TOKEN.findall(_REPEATS.sub(_two, text))
    whole = " ".join(_split_clitics(t) if "'" in t else t for t in whole).split()
    whole = _DASHES.sub("--", _DOTS.sub("...", " ".join(_NO_APOSTROPHE.get(t, t) for t in whole))).split()
    assert [t for c in text.split() for t in chunk_tokens(c)] == whole


# Runs of punctuation, the one step of normalize that crosses chunks, and what may sit inside them.
RUN_PARTS = ["!", "?", ".", "-", "'", " ", "\x01", "\ue000", "a", "...", "--", "!!!!"]
RUNS = st.lists(st.sampled_from(RUN_PARTS), max_size=12)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(texts, RUNS.map("".join)))
def test_word_ids_cached_per_chunk_equal_the_ids_of_the_normalised_words(text):
    """``WordTokenizer.encode`` caches ids per chunk and takes the whole line when a punctuation run may cross
    chunks: always the ids of ``normalize(text).split()``."""
    from lstm_text.tokenizer import UNK, WordTokenizer

    words = sorted(set(normalize(text).split()) | {"!", "...", "--", "a"})
    tok = WordTokenizer(words[::2], normalize=NORMALIZER)  # half the words: unknown ones too
    expected = [tok.index.get(w, UNK) for w in normalize(text).split()]
    assert tok.encode(text) == expected
    assert tok.encode(text) == expected  # again, from the cache


def test_word_ids_of_punctuation_runs():
    from lstm_text.tokenizer import WordTokenizer

    tok = WordTokenizer(["wow", "!", "..."], normalize=NORMALIZER)
    for text in ("wow!!!!!!", "wow ! ! ! ! ! !", "wow !! !! !!", "wow!\x01!\x01!\x01!", "wow .... .... .... ...."):
        assert tok.encode(text) == [tok.index.get(w, 1) for w in normalize(text).split()], text
        assert len(tok.encode(text)) == 4, text  # capped at three
    assert not tok._chunk_ids  # each of those lines was taken whole
    assert tok.encode("WOW ... wow") == [2, 4, 2] and set(tok._chunk_ids) == {"wow", "..."}


def test_word_ids_cache_stays_bounded(monkeypatch):
    from lstm_text import tokenizer
    from lstm_text.tokenizer import WordTokenizer

    monkeypatch.setattr(tokenizer, "CHUNK_IDS_MAX", 4)
    tok = WordTokenizer(["a", "b"], normalize=NORMALIZER)
    assert tok.encode(" ".join(f"w{i}" for i in range(50)) + " a b") == [1] * 50 + [2, 3]
    assert 0 < len(tok._chunk_ids) <= 4


def test_detokenize():
    assert detokenize("it 's") == "it's"
    assert detokenize("does n't") == "doesn't"
    assert detokenize("ca n't") == "can't"
    assert detokenize("wo n't") == "won't"
    assert detokenize("-lrb- the film -rrb- is `` great '' , and so on .") == '(the film) is "great", and so on.'
    assert detokenize("` small ' movie ; clones ' last minutes") == "'small' movie; clones' last minutes"
    assert detokenize("end .") == "end."
    assert detokenize("no. .") == "no. ."  # not an ellipsis
    assert detokenize("writer\\/director , $ 5 , 100 %") == "writer/director, $5, 100%"


def test_capitalise():
    assert capitalise("i think it 's good. is it? yes! it is") == "I think it 's good. Is it? Yes! It is"
    assert (
        capitalise('i\'m sure i am, hi-fi or wiki. "great" he said') == 'I\'m sure I am, hi-fi or wiki. "Great" he said'
    )


# Hand-written SST-style lines, tricky ones included: quotes, possessive plurals, abbreviations at the end of a
# sentence, "'60s", spaced hyphens, escapes, brackets next to punctuation.
SST_STYLE = [
    "it 's a charming and often affecting journey .",
    "the movie does n't work , and it ca n't decide what it wants to be .",
    "i 'm not sure what the director was going for , but i wo n't be back .",
    "-lrb- the film -rrb- is a mess -- a glorious , gaudy mess .",
    "`` the ring '' is scarier than `` the grudge '' .",
    "as ` chick flicks ' go , this one is pretty miserable .",
    "no screen fantasy-adventure in recent memory has the showmanship of clones ' last 45 minutes .",
    "a raft of '60s and '70s european-set spy pictures .",
    "a sequence of ridiculous shoot - 'em - up scenes .",
    "the u.s. version is worse than the original , etc. .",
    "no. .",
    "it 's 87 minutes long and costs $ 10 ; that 's 100 % too much .",
    "walter hill 's undisputed is like a 1940s warner bros. .",
    "what better message than ` love thyself ' could young women of any size receive ?",
    "` de niro ... is a veritable source of sincere passion . '",
    "... a lot of fun !",
    "the writer\\/director 's cut runs 2 1\\/2 hours .",
    "you will laugh your \\*\\*\\* off for an hour-and-a-half .",
    "an episode of `` m \\* a \\* s \\* h '' from an asian perspective .",
    "they 're , like , totally ` out there ' , you know ?",
    "you 'll laugh ; you 'll cry ; you 'd pay to see it again .",
    "-lrb- t -rrb- he ideas of revolution # 9 are more compelling than the execution",
    "is n't it great ? ! it is ! ! ! ! !",
    "mr. deeds is , as comedy goes , very silly : the jokes fall flat .",
    "a.i. is spielberg 's most ambitious film .",
    "the film 's heart is in the right place ... its brain is n't .",
    "there 's nothing here you have n't seen before ; it 's just louder .",
    "rock 'n' roll never looked so good .",
    "the film -lrb- and its star -rrb- are a delight : smart , funny and warm .",
    "a movie that 's `` funny '' only in the sense that it 's ` awful . '",
    "he said , `` i 'll be back . ''",
    "a zzzzzzzzz-inducing , sooooo boring film .",
    "cliché-ridden , naïve , amélie-like and schütte 's best .",
    "the ` re-release ' is a cash grab : -lrb- .",
    "i could n't care less about the u.s. ...",
]


@pytest.mark.parametrize("sst", SST_STYLE)
def test_detokenize_round_trip(sst):
    assert normalize(capitalise(detokenize(sst))) == normalize(sst)


@pytest.mark.skipif(not SST_DEV.exists(), reason="SST-2 dev set not available")
def test_detokenize_round_trip_on_sst2_dev():
    lines = SST_DEV.read_text(encoding="utf-8").splitlines()[1:201]
    texts = [line.split("\t", 1)[1] for line in lines]
    failures = [s for s in texts if normalize(capitalise(detokenize(s))) != normalize(s)]
    assert failures == []


def test_speed(monkeypatch):
    """What makes it fast: each distinct chunk is tokenized once, a chunk seen before is one dict lookup (the
    lines/s figure itself: benchmarks/normalize_speed.py)."""
    import lstm_text.normalize as n

    lines = [capitalise(detokenize(s)) for s in SST_STYLE] + SST_STYLE
    lines = (lines * (3000 // len(lines) + 1))[:3000]
    monkeypatch.setattr(n, "_CHUNKS", {})
    calls = []
    monkeypatch.setattr(n, "chunk_tokens", lambda c, real=n.chunk_tokens: calls.append(c) or real(c))
    for line in lines:
        normalize(line)
    assert sorted(calls) == sorted({c for line in lines for c in n._line(line).split()})


def test_version_and_light_import():
    assert NORMALIZER == "v1"
    code = "import sys, lstm_text.normalize; print(sorted({'torch', 'numpy', 'typer', 'rich'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_chunk_cache_is_bounded(monkeypatch):
    import lstm_text.normalize as n

    monkeypatch.setattr(n, "_CHUNKS_MAX", 8)
    monkeypatch.setattr(n, "_CHUNKS", {})
    text = " ".join(f"Word{i}'s" for i in range(50))
    assert normalize(text) == " ".join(f"word{i} 's" for i in range(50))
    assert 0 < len(n._CHUNKS) <= 8

"""Text normalisation for sentiment classifiers: raw text (``Doesn't``, ``GREAT!!!``, emoji, HTML, URLs) and the
Stanford Sentiment Treebank's tokenized lower-case text (``does n't``, ``-lrb-``) map to one canonical form.
Standard library only. (The other way, SST's tokens written as people write them, is ``benchmarks/sst.py``.)
"""

from __future__ import annotations

import html
import re
import unicodedata
from itertools import chain

__all__ = ["NORMALIZER", "normalize", "line_chunks", "chunk_tokens"]

NORMALIZER = "v1"  # bump whenever normalize() changes its output: checkpoints record the version they saw

# Emoji people use to carry sentiment, mapped to plain words a model trained on SST text already knows.
# One line per word; the emoji as they look after variation selectors and skin tones are dropped.
_EMOJI_TABLE = """
😍 🥰 😻 ❤ ♥ 💕 💞 💓 💗 💖 💘 💝 💟 ❣ 🧡 💛 💚 💙 💜 🖤 🤍 🤎 🫶 🤟 : love
😀 😃 😄 😁 😊 ☺ 😺 😸 : happy
🙂 : smile
😆 : laughing
😂 😹 : funny
🤣 : hilarious
😅 : nervous laugh
😉 : wink
😇 : angel
😋 : delicious
😛 😜 😝 : playful
🤪 : crazy
🤗 : hug
🤭 : cheeky
🤩 : amazing
🥳 🎉 🎊 🥂 🍾 : celebrate
😎 🆒 : cool
🤓 : nerd
🧐 : curious
🤔 : thinking
🤨 : doubtful
😐 😑 : meh
😶 🤐 : speechless
😏 😼 : smug
😒 : unimpressed
🙄 : annoying
😬 : awkward
🤥 : liar
😌 : relieved
🥲 : bittersweet
🥹 : touching
😔 😢 😥 🙁 ☹ 😿 🥀 : sad
😭 : crying
😞 : disappointed
😟 😦 😧 : worried
😕 : confused
😮 😯 : surprised
😲 🙀 : shocked
😳 🙈 : embarrassed
🥺 : please
😨 😱 : scared
😰 : anxious
😓 : stressed
😖 😣 😤 : frustrated
😩 😫 : exhausted
😪 : sleepy
😴 🥱 💤 : boring
🤤 : drooling
😷 🤒 🤧 : sick
🤕 : hurt
🤢 : nauseous
🤮 : disgusting
🥵 : hot
🥶 : cold
😵 🥴 : dizzy
🤯 : mind blowing
😠 😡 😾 : angry
🤬 : furious
😈 : naughty
👿 : evil
💀 ☠ : dead
💩 : crap
🤡 : ridiculous
👹 👺 : monster
👻 : ghost
😘 😗 😙 😚 😽 💋 : kiss
💔 : heartbroken
👍 : good
👎 : bad
👌 : nice
👏 : bravo
🙌 : praise
🙏 : thanks
💪 : strong
✌ : peace
🤞 : hopefully
🤘 : rock
🤝 : deal
👋 : hello
👊 ✊ : respect
🖕 : screw you
🤦 : stupid
🤷 : whatever
🙇 : sorry
👀 : watching
🔥 : awesome
💯 : perfect
✨ : sparkling
⭐ : star
🌟 : brilliant
🏆 🥇 : winner
👑 : king
💎 : gem
🐐 : greatest
🍿 : popcorn
🎬 🎥 : movie
🎶 🎵 : music
🗑 🚮 : trash
✅ ✔ ☑ : yes
❌ ✖ 🚫 ⛔ : no
⚠ : warning
💣 : bomb
💥 : boom
💸 : waste money
💰 🤑 : money
🌈 : rainbow
☀ : sunny
🌹 🌸 💐 : flowers
🎁 : gift
🍻 🍺 : cheers
🆗 : ok
"""


def _emoji_words(table: str) -> dict[str, str]:
    words = {}
    for line in table.strip().splitlines():
        emoji, _, word = line.rpartition(" : ")
        words.update(dict.fromkeys(emoji.split(), f" {word} "))
    return words


_EMOJI_WORDS = _emoji_words(_EMOJI_TABLE)

# Pictographs (the emoji blocks, dingbats, misc symbols, arrows, shapes, regional indicators, tag characters)
# become a space unless mapped above: a word model has nothing to learn from an unknown symbol. Control
# characters, private-use characters and U+FFFD (a decoding accident) go the same way.
_PICTOGRAPH = re.compile(
    "[\U0001f000-\U0001faff\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff"
    "\u3030\u303d\u3297\u3299\u00a9\u00ae\U000e0000-\U000e007f"
    "\x00-\x08\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]"
)

# Curly and typographic quotes, dashes and invisible joiners, applied after NFKC (which leaves them alone).
_UNICODE_PUNCT = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u02bc\u02bb\u2039\u203a", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2212", "-"),
        **dict.fromkeys("\u2013\u2014\u2015", "--"),  # dashes are PTB's "--"
        # variation selectors, ZWJ (emoji sequences), soft hyphen, word joiner: invisible, so dropped
        **dict.fromkeys("\ufe0e\ufe0f\u200d\u200c\u00ad\u2060\u20e3", None),
        **dict.fromkeys("\u200b\ufeff", " "),  # zero-width space separates words
    }
)

# SST's PTB escapes stand for brackets; mapping them back lets SST text and raw text meet.
PTB_BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}
_PTB_BRACKET = re.compile(r"-[lr][rsc]b-")

# Tags from scraped reviews (IMDB's <br />) say nothing about sentiment; a space keeps the words apart.
_TAG = re.compile(
    r"</?(?:br|p|i|b|u|em|strong|a|div|span|hr|img|ul|ol|li|h[1-6]|font|center|small|big|blockquote"
    r"|sup|sub|s|strike|tt|code|pre|table|tr|td|th|q|cite|abbr)\b[^<>]*>"
)

# Links, addresses and user names are noise for sentiment; a placeholder word each keeps that one was there.
_URL = re.compile(
    r"(?:https?://|\bwww\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]}]"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|edu|gov|io|ly|co\.uk)\b(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)\]}])?"
)
_URL_HINT = re.compile(r"://|www\.|\.(?:com|net|org|edu|gov|io|ly|co\.uk)\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MENTION = re.compile(r"(?<![\w@])@\w+")
_HASHTAG = re.compile(r"(?<![\w#])#(?=[^\W\d_])")  # "#love" reads as "love"; "# 9" is a number

# Emoticons carry sentiment like words do; listed before tokenizing so ":)" is not split into ": )".
_EMOTICONS = {
    "angry": r">:-?\(",
    "crying": r":'-?\(+|;_;",
    "sad": r"[:=]-?\(+",
    "smile": r"[:=]-?\)+",
    "wink": r";-?\)+|;-?d(?!\w)",
    "happy": r"(?<![\d:]):-?d(?!\w)|\^_*\^",
    "playful": r"(?<![\d:]):-?p(?!\w)",
    "surprised": r"(?<![\d:]):-?o(?!\w)",
    "meh": r"(?<![\d:]):-?[|/\\](?![\w/\\])",
    "kiss": r":-?\*",
    "heartbroken": r"(?<![\d<])</3",
    "love": r"(?<![\d<])<3+(?!\d)",
    "annoyed": r"-_+-",
}
_EMOTICON = re.compile("|".join(f"(?P<{word}>{pattern})" for word, pattern in _EMOTICONS.items()))

# "soooo goooood" -> "soo good": three or more of a letter become two, which keeps "good" and "cool".
_REPEATS = re.compile(r"([^\W\d_])\1\1+")
_REPEATS_ASCII = re.compile(r"([a-z])\1\1+")  # the same on lower-case ASCII, and faster

# Clitics split the PTB way ("doesn't" -> "does n't", "can't" -> "ca n't"), so raw text meets SST's tokens.
_CLITIC = re.compile(r"(?<=\w)(n't|'(?:s|re|ve|ll|d|m))(?![\w-])")  # applied to word tokens
_NO_APOSTROPHE = {
    **{f"{w}nt": f"{w} n't" for w in "do does did is was were are has have had would could should must need".split()},
    "aint": "ai n't",
    "cant": "ca n't",
    "wont": "wo n't",
    "cannot": "can not",  # PTB splits it too
    "im": "i 'm",
    "ive": "i 've",
    "youre": "you 're",
    "theyre": "they 're",
    "youve": "you 've",
    "theyve": "they 've",
    "youll": "you 'll",
    "theyll": "they 'll",
    "thats": "that 's",
    "whats": "what 's",
    "theres": "there 's",
    "shes": "she 's",
}

# One token per match, joined by spaces. Order matters: earlier alternatives win at the same position. Words come
# first because they are most tokens; a word ending in "." keeps it when it is an initialism or abbreviation.
_TOKEN = re.compile(
    r"""
    \w+(?:(?:[-']|(?<=\d)[.,:/](?=\d))\w+)*           # words: well-acted, o'fallon, don't, 3.5, 10,000, 3pm
    (?:(?=\.)(?:
        (?<=\b[^\W\d_])\.(?:[^\W\d_]\.)+                # initialisms: u.s. a.i. l.a.
      | (?<=\b(?:mr|ms|dr|jr|sr|st|vs))\. | (?<=\b(?:mrs|etc))\. | (?<=\bprof)\.   # abbreviations
    ))?
  | @user(?!\w)                                       # the mention placeholder
  | \.{2,} | -{2,}                                    # ellipsis and dash, canonicalised below
  | '(?:s|re|ve|ll|d|m)(?![\w-])                      # clitics, once split off their word
  | [^\w\s\x00-\x08\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]   # any other symbol stands alone
    """,
    re.VERBOSE,
)
_DOTS = re.compile(r"\.{4,}|(?<!\.)\.\.(?!\.)")  # "..", "....." -> "...": one ellipsis token, as in SST
_DASHES = re.compile(r"-{3,}")  # "---" -> "--", SST's dash
# Emphasis by repetition ("!!!!!!") is capped at three tokens, so it counts but cannot swamp a line.
_PUNCT_RUN = re.compile(r" ([^\w\s]|\.\.\.|--)(?: \1){3,}(?!\S)")  # on " " + text: a literal first is fast


def _pictograph(match: re.Match) -> str:
    return _EMOJI_WORDS.get(match.group(), " ")


# Replacement functions rather than templates: they cost nothing when nothing matches, which is the usual case.
def _two(match: re.Match) -> str:
    return match.group(1) * 2


def _three(match: re.Match) -> str:
    return f" {match.group(1)}" * 3


def _split_clitics(token: str) -> str:
    split = _CLITIC.sub(r" \1", token)
    # a split can expose another clitic ("an'tn't"): repeat until nothing changes, or a second pass would
    return token if split == token else _split_clitics(" ".join(_TOKEN.findall(split)))


def chunk_tokens(chunk: str) -> tuple[str, ...]:
    """The tokens of one whitespace-free chunk of lower-cased text: runs of a letter shortened, PTB tokens,
    clitics split off, apostrophe-less contractions expanded, ellipses and dashes made SST's. Each of these
    steps is local to a chunk (no token and no match spans whitespace), so ``normalize`` runs them once per
    distinct chunk (``_CHUNKS``), and a tokenizer may cache ids per chunk (``line_chunks``)."""
    chunk = (_REPEATS_ASCII if chunk.isascii() else _REPEATS).sub(_two, chunk)
    tokens = [chunk] if chunk.isalnum() else _TOKEN.findall(chunk)  # isalnum: exactly \\w+ without "_"
    if any("'" in t[1:] for t in tokens):  # a clitic needs a word character before its "'"
        tokens = " ".join([_split_clitics(t) if "'" in t[1:] else t for t in tokens]).split()
    if not _NO_APOSTROPHE.keys().isdisjoint(tokens):
        tokens = " ".join([_NO_APOSTROPHE.get(t, t) for t in tokens]).split()  # dont -> do n't, im -> i 'm
    if any(".." in t or "---" in t for t in tokens):
        tokens = [_DASHES.sub("--", _DOTS.sub("...", t)) for t in tokens]
    return tuple(tokens)


# Chunks seen so far and their tokens: words recur (Zipf), so most chunks of a line are one dict lookup. Cleared
# when full, which bounds its memory (~10 MB); dict operations are atomic, so threads may share it.
_CHUNKS: dict[str, tuple[str, ...]] = {}
_CHUNKS_MAX = 50_000


def _chunk(chunk: str) -> tuple[str, ...]:
    tokens = chunk_tokens(chunk)
    if len(_CHUNKS) >= _CHUNKS_MAX:
        _CHUNKS.clear()
    _CHUNKS[chunk] = tokens
    return tokens


def _unicode(text: str) -> str:
    """NFKC (full-width forms, ligatures, "…"), then typographic punctuation to ASCII, then emoji to words."""
    text = unicodedata.normalize("NFKC", text.replace("\u00b4", "'"))  # NFKC would make "´" a space + accent
    text = unicodedata.normalize("NFKC", text.translate(_UNICODE_PUNCT))  # dropped joiners may let letters compose
    return _PICTOGRAPH.sub(_pictograph, text)


def _line(text: str) -> str:
    """The steps of ``normalize`` that look across whitespace: entities, Unicode, case, SST's escapes, tags,
    addresses, links, mentions, hashtags and emoticons."""
    if "&" in text:
        text = html.unescape(text)  # &amp; &quot; &#39; from scraped HTML; first, as it can produce anything
    if not text.isascii():
        text = _unicode(text)
    text = text.lower()  # capitals must never flip an answer
    if "`" in text:
        text = text.replace("`", "'")  # SST's opening quotes: `` and `
    if "''" in text:
        text = text.replace("''", '"')  # SST's closing double quote; `` became '' above
    if "\\" in text:
        text = text.replace("\\/", "/").replace("\\*", "*")  # SST escapes / and *
    if "b-" in text:
        text = _PTB_BRACKET.sub(lambda m: PTB_BRACKETS[m.group()], text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "@" in text:
        text = _EMAIL.sub(" email ", text)  # before URLs: the domain of an address is not a link
    if _URL_HINT.search(text):
        text = _URL.sub(" url ", text)
    if "@" in text:
        text = _MENTION.sub("@user", text)
    if "#" in text:
        text = _HASHTAG.sub("", text)
    if ":" in text or ";" in text or "<" in text or "=" in text or "_" in text or "^" in text:
        text = _EMOTICON.sub(lambda m: f" {m.lastgroup} ", text)
    return text


def normalize(text: str) -> str:
    """The canonical form of raw or SST-tokenized text: lower-case, PTB-tokenized, one space between tokens.

    Idempotent: ``normalize(normalize(x)) == normalize(x)``.
    """
    get = _CHUNKS.get
    text = " ".join(chain.from_iterable([get(c) or _chunk(c) for c in _line(text).split()]))
    return _PUNCT_RUN.sub(_three, " " + text)[1:]


# Four of one symbol with only spaces (or characters no token keeps) between: what a run that ``_PUNCT_RUN``
# caps needs, so a line without it is capped nowhere.
_RUN_HINT = re.compile(r"([^\w\s])(?:[\s\x00-\x08\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]*\1){3}")


def line_chunks(text: str) -> list[str] | None:
    """The chunks of ``text`` whose ``chunk_tokens``, in order, are ``normalize(text).split()``; None when a run
    of repeated punctuation, which ``normalize`` caps across chunks, may be there. Lets a tokenizer cache ids
    per chunk (``WordTokenizer.encode``)."""
    text = _line(text)
    return None if _RUN_HINT.search(text) else text.split()

"""SST's tokenized lower-case text as people write it: ``detokenize`` (``it 's`` -> ``it's``, ``-lrb-`` -> ``(``)
and ``capitalise``, the inverse of ``lstm_text.normalize`` on SST (``normalize(capitalise(detokenize(s))) ==
normalize(s)``). For benchmarks (``raw_text.py``) and tests; not part of the installed package.
"""

from __future__ import annotations

import re

from lstm_text.normalize import PTB_BRACKETS

# detokenize: SST tokens that attach to the word before them, and those that attach to the word after.
_ATTACH_LEFT = set(", . ; : ! ? % ... ) ] } ' '' n't 's 're 've 'll 'd 'm".split())
_ATTACH_RIGHT = set("( [ { `` ` $".split())
_DETOK_MAP = {**PTB_BRACKETS, "``": '"', "''": '"', "`": "'"}
_CLITIC_AFTER_QUOTE = re.compile(r"(?:s|re|ve|ll|d|m)(?![\w-])")  # "'" + this would read as a clitic


def detokenize(text: str) -> str:
    """SST's tokenized text as a person would write it: ``it 's`` -> ``it's``, ``-lrb-`` -> ``(``, ``end .`` ->
    ``end.``. Lower case stays lower case (see ``capitalise``)."""
    out = ""
    glue = False  # the previous token opens a bracket or quote: no space after it
    for token in text.split():
        word = _DETOK_MAP.get(token) or token.replace("\\/", "/").replace("\\*", "*")
        if token in PTB_BRACKETS:
            token = word
        attach = out and (glue or token in _ATTACH_LEFT)
        # Never glue two pieces into something that reads differently: "no. ." is not an ellipsis, "( x : )"
        # is not a smiley, "` 're-release" is not a clitic, two quotes '' are not a double quote.
        if attach and (
            (out[-1] == "." and word[0] == ".")
            or (out[-1] in ":;=" and word[0] in ")]}(")
            or (out[-1] == "'" and word[0] == "'")
            or (glue and out[-1] == "'" and _CLITIC_AFTER_QUOTE.match(word))
        ):
            attach = False
        out += word if attach or not out else " " + word
        glue = token in _ATTACH_RIGHT
    return out


_SENTENCE_START = re.compile(r"(?:^|(?<=[.!?])\s+)[\"'(\[{]*[a-z]")
_PRONOUN_I = re.compile(r"(?<![\w'.-])i(?![\w.-])")


def capitalise(text: str) -> str:
    """Capitalise the first letter of each sentence and the pronoun "i" (ASCII letters only)."""
    text = _SENTENCE_START.sub(lambda m: m.group()[:-1] + m.group()[-1].upper(), text)
    return _PRONOUN_I.sub("I", text)

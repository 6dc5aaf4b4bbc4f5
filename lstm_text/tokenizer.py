"""Tokenizers behind one small interface: characters, SentencePiece BPE/unigram trained in memory, or the
words of normalised text (classifiers with pretrained word vectors).

A tokenizer may own a text normalisation (``normalize.normalize``, recorded by version): classifiers read
raw text (capitals, ``doesn't``, emoji, HTML) and SST's tokenized lower-case text the same way. Language
models never normalise: generation must reproduce text exactly.

A tokenizer is stored as JSON-able data inside the checkpoint (``to_dict``/``from_dict``): no side files.
Decoding goes through bytes, so SentencePiece byte-fallback pieces stream without garbling a character.
No torch here.
"""

from __future__ import annotations

import base64
import codecs
import io
import re
import weakref
from collections import Counter
from collections.abc import Iterable

from .errors import LstmTextError

PAD, UNK = 0, 1  # shared ids: padding for batches of lines, and characters never seen in training
CHUNK_IDS_MAX = 50_000  # WordTokenizer's cache of ids per normalised chunk: cleared when full (~10 MB)


def normalizer(version: str):
    """The text function of a normalisation version ("" for none)."""
    if not version:
        return None
    from . import normalize

    if version != normalize.NORMALIZER:
        raise LstmTextError(
            f"the model's text normalisation {version!r} is unknown to this lstm-text ({normalize.NORMALIZER}); "
            "upgrade lstm-text"
        )
    return normalize.normalize


class CharTokenizer:
    """One id per Unicode character seen in training; anything else maps to ``UNK``."""

    kind = "char"

    def __init__(self, chars: list[str]):
        self.chars = list(chars)
        self.index = {c: i + 2 for i, c in enumerate(self.chars)}
        self._pieces = [b"", "\ufffd".encode()] + [c.encode("utf-8", "surrogatepass") for c in self.chars]

    @classmethod
    def train(cls, text: str, vocab_size: int = 0) -> CharTokenizer:
        return cls.from_counts(Counter(text), vocab_size)

    @classmethod
    def from_counts(cls, counts: dict[str, int], vocab_size: int = 0) -> CharTokenizer:
        """The most frequent characters (at most ``vocab_size - 2``; 0: all), from a streaming count."""
        chars = sorted(counts, key=lambda c: (-counts[c], c))
        if vocab_size:
            chars = chars[: max(vocab_size - 2, 1)]
        return cls(sorted(chars))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 2

    def encode(self, text: str) -> list[int]:
        get = self.index.get
        return [get(c, UNK) for c in text]

    def piece_bytes(self, i: int) -> bytes:
        return self._pieces[i] if 0 <= i < len(self._pieces) else b""

    def unknown(self, text: str) -> set[str]:
        return {c for c in text if c not in self.index}

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": "".join(self.chars)}

    def decode(self, ids: Iterable[int]) -> str:
        return decode_bytes(self, ids)


class SentencePieceTokenizer:
    """SentencePiece BPE or unigram with byte fallback; ids shifted by nothing (pad=0, unk=1 as ours)."""

    def __init__(self, proto: bytes, kind: str, normalize: str = ""):
        import sentencepiece as spm

        self.kind, self.normalize = kind, normalize
        self._norm = normalizer(normalize)
        self.proto = proto
        self.sp = spm.SentencePieceProcessor(model_proto=proto)
        self._pieces = [self._bytes_of(self.sp.id_to_piece(i), i) for i in range(self.sp.get_piece_size())]
        self._newline = self.sp.piece_to_id("\n")

    def _bytes_of(self, piece: str, i: int) -> bytes:
        if self.sp.is_byte(i):
            return bytes([int(piece[1:-1], 16)])  # "<0xAB>"
        if self.sp.is_control(i) or self.sp.is_unknown(i):
            return b""
        return piece.replace("\u2581", " ").encode("utf-8")

    @classmethod
    def train(cls, text: str, vocab_size: int, kind: str, normalize: str = "") -> SentencePieceTokenizer:
        return cls.train_lines(text.split("\n"), vocab_size, kind, normalize)

    @classmethod
    def train_lines(cls, lines: list[str], vocab_size: int, kind: str, normalize: str = "") -> SentencePieceTokenizer:
        """Trained on ``lines`` (a corpus's lines, or a sample of them: ``data.tokens.sample_lines``)."""
        import sentencepiece as spm

        norm = normalizer(normalize)
        lines = [norm(ln) if norm else ln for ln in lines if ln]
        lines = [ln for ln in lines if ln]
        if not lines:
            raise LstmTextError("cannot train a tokenizer on an empty corpus")
        model = io.BytesIO()
        # Every piece must fit; SentencePiece needs more distinct characters than that for tiny corpora.
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_writer=model,
                model_type=kind,
                vocab_size=vocab_size,
                pad_id=PAD,
                unk_id=UNK,
                bos_id=-1,
                eos_id=-1,
                byte_fallback=True,  # any byte sequence encodes: no unknowns for Unicode text
                character_coverage=0.9995,
                normalization_rule_name="identity",  # exact round trips: no NFKC, no space folding
                remove_extra_whitespaces=False,
                add_dummy_prefix=False,  # decode(a + b) == decode(a) + decode(b): streaming stays exact
                user_defined_symbols=["\n"],
                allow_whitespace_only_pieces=True,
                split_digits=True,
                input_sentence_size=2_000_000,
                shuffle_input_sentence=True,
                max_sentence_length=1 << 16,
                hard_vocab_limit=False,
                num_threads=2,
                minloglevel=2,
            )
        except RuntimeError as e:
            m = re.search(r"(\d+) vs (\d+)", str(e))
            if m and "required" in str(e):  # 256 byte pieces plus the text's characters must fit
                raise LstmTextError(
                    f"{{vocab_size}} {vocab_size} is too small for a {kind} tokenizer with byte "
                    f"fallback on this text; use at least {int(m.group(2)) + 20}",
                    "vocab_size",
                ) from None
            raise LstmTextError(f"SentencePiece could not train a {kind} tokenizer: {str(e).splitlines()[0]}") from None
        return cls(model.getvalue(), kind, normalize)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Line by line (no piece crosses "\n", a user-defined piece), in one batched call: the same ids as
        encoding the whole text, 4x faster on long texts (SentencePiece slows down on very long sentences)."""
        text = self._norm(text) if self._norm else text
        if "\n" not in text:
            return self.sp.encode(text)
        lines = self.sp.encode(text.split("\n"), num_threads=1)
        ids = lines[0]
        for line in lines[1:]:
            ids.append(self._newline)
            ids += line
        return ids

    def piece_bytes(self, i: int) -> bytes:
        return self._pieces[i] if 0 <= i < len(self._pieces) else b""

    def unknown(self, text: str) -> set[str]:
        return set()  # byte fallback: every character encodes

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "model": base64.b64encode(self.proto).decode("ascii")}
        return d | ({"normalize": self.normalize} if self.normalize else {})

    def decode(self, ids: Iterable[int]) -> str:
        return decode_bytes(self, ids)


class WordTokenizer:
    """The whitespace-separated words of normalised text; anything else maps to ``UNK``.

    For classifiers with pretrained word vectors: the vocabulary holds the labelled data's words and the
    vectors' most frequent words, so a word the labelled data never shows keeps its own id and vector.
    """

    kind = "word"

    def __init__(self, words: list[str], normalize: str = ""):
        self.words, self.normalize = list(words), normalize
        self._norm = normalizer(normalize)
        self.index = dict(zip(self.words, range(2, len(self.words) + 2)))
        self._pieces: list[bytes] | None = None  # built on first decode: classification never needs it
        self._chunk_ids: dict[str, tuple[int, ...]] = {}  # see encode
        if self._norm:
            from .normalize import chunk_tokens, line_chunks

            self._line_chunks, self._chunk_tokens = line_chunks, chunk_tokens

    @classmethod
    def train(cls, text: str, vocab_size: int = 0, normalize: str = "") -> WordTokenizer:
        """Words of ``text`` by frequency (at most ``vocab_size - 2``; 0: all). Over pretrained vectors the
        vocabulary comes from ``data.vectors.vector_vocabulary`` instead."""
        norm = normalizer(normalize)
        counts = Counter((norm(text) if norm else text).split())
        words = sorted(counts, key=lambda w: (-counts[w], w))
        if vocab_size:
            words = words[: max(vocab_size - 2, 1)]
        return cls(words, normalize)

    @property
    def vocab_size(self) -> int:
        return len(self.words) + 2

    def encode(self, text: str) -> list[int]:
        """The ids of the words of ``normalize(text)``. Normalised text is the tokens of its whitespace-separated
        chunks (``normalize.line_chunks``), and words recur, so the ids of each chunk are cached: one lookup
        per chunk instead of normalising, joining, splitting and looking up each word (1.6x faster on SST)."""
        get = self.index.get
        if not self._norm:
            return [get(w, UNK) for w in text.split()]
        chunks = self._line_chunks(text)
        if chunks is None:  # a run of punctuation that normalize caps may cross chunks: the line as a whole
            return [get(w, UNK) for w in self._norm(text).split()]
        cache = self._chunk_ids
        ids: list[int] = []
        for c in chunks:
            known = cache.get(c)
            if known is None:
                if len(cache) >= CHUNK_IDS_MAX:
                    cache.clear()  # bounds memory; dict operations are atomic, so threads may share it
                known = cache[c] = tuple([get(w, UNK) for w in self._chunk_tokens(c)])
            ids += known
        return ids

    def piece_bytes(self, i: int) -> bytes:
        if self._pieces is None:
            self._pieces = [b"", b" \xef\xbf\xbd"] + [(" " + w).encode("utf-8", "surrogatepass") for w in self.words]
        return self._pieces[i] if 0 <= i < len(self._pieces) else b""

    def pieces(self) -> list[str]:
        """The token of each id (PAD and UNK as empty strings)."""
        return ["", ""] + self.words

    def unknown(self, text: str) -> set[str]:
        get = self.index.get
        return {w for w in (self._norm(text) if self._norm else text).split() if get(w) is None}

    def to_dict(self) -> dict:
        return {"kind": self.kind, "words": "\n".join(self.words), "normalize": self.normalize}

    def decode(self, ids: Iterable[int]) -> str:
        return decode_bytes(self, ids)


Tokenizer = CharTokenizer | SentencePieceTokenizer | WordTokenizer


def decode_bytes(tok: Tokenizer, ids: Iterable[int]) -> str:
    return b"".join(tok.piece_bytes(i) for i in ids).decode("utf-8", "replace")


class StreamDecoder:
    """Turns ids into text as they arrive, holding back only the bytes of an unfinished character."""

    def __init__(self, tok: Tokenizer):
        self.tok, self.texts = tok, piece_texts(tok)
        self.dec = codecs.getincrementaldecoder("utf-8")("replace")
        self.clean = True  # no bytes of an unfinished character held

    def push(self, i: int) -> str:
        if self.clean and i < len(self.texts) and (text := self.texts[i]) is not None:
            return text  # the common case: a whole character (or more) with nothing before it to finish
        out = self.dec.decode(self.tok.piece_bytes(i))
        self.clean = not self.dec.getstate()[0]
        return out

    def flush(self) -> str:
        self.clean = True
        return self.dec.decode(b"", final=True)


_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def piece_texts(tok: Tokenizer) -> list[str | None]:
    """Each id's text where its bytes are whole UTF-8 characters (then it reads the same whatever came before,
    once the text before it is complete), else None (a byte-fallback piece, a lone surrogate). Computed once
    per tokenizer."""
    texts = _TEXTS.get(tok)
    if texts is None:
        texts = []
        for i in range(tok.vocab_size):
            try:
                texts.append(tok.piece_bytes(i).decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(None)
        _TEXTS[tok] = texts
    return texts


def train_tokenizer(text: str, kind: str, vocab_size: int = 0, normalize: str = "") -> Tokenizer:
    """A tokenizer of ``kind`` trained on ``text``. ``normalize``: a normalisation version (classifiers)."""
    if kind == "char":
        if normalize:
            raise LstmTextError("a char tokenizer does not normalise text")
        return CharTokenizer.train(text, vocab_size)
    if kind == "word":
        return WordTokenizer.train(text, vocab_size, normalize)
    return SentencePieceTokenizer.train(text, vocab_size or 2048, kind, normalize)


def tokenizer_from_dict(d: dict) -> Tokenizer:
    kind = d.get("kind")
    if kind == "char":
        return CharTokenizer(list(d["chars"]))
    if kind == "word":
        words = d.get("words", "")
        return WordTokenizer(words.split("\n") if words else [], d.get("normalize", ""))
    if kind in ("bpe", "unigram"):
        norm = d.get("normalize", "")
        normalizer(norm)  # an unknown version is an upgrade message, not a damaged file
        try:
            return SentencePieceTokenizer(base64.b64decode(d["model"]), kind, norm)
        except Exception as e:  # a damaged proto: SentencePiece raises several kinds
            raise LstmTextError(f"the model's tokenizer is damaged ({e})") from None
    raise LstmTextError(f"unknown tokenizer kind {kind!r} in the model file")

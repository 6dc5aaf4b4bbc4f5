"""The tokenizer of an lstm-text ONNX export, read from its tokenizer.json: NumPy and the standard library only.

Shared by onnx_generate.py and onnx_classify.py; neither imports torch nor lstm-text. A SentencePiece (bpe,
unigram) export needs the ``sentencepiece`` package to encode; char and word exports need nothing more.
"""

from __future__ import annotations

import codecs
import importlib.util
import json
from pathlib import Path


class Tokenizer:
    def __init__(self, folder: str | Path):
        folder = Path(folder)
        self.manifest = json.loads((folder / "export.json").read_text(encoding="utf-8"))
        d = json.loads((folder / self.manifest["tokenizer"]).read_text(encoding="utf-8"))
        self.kind, self.pad, self.unk = d["kind"], d["pad_id"], d["unk_id"]
        self.piece_bytes = [bytes.fromhex(h) for h in d["piece_bytes"]]
        self.normalize = None
        if d["normalize"]:  # the text normalisation the model was trained with, shipped beside it as Python
            spec = importlib.util.spec_from_file_location("lstm_text_normalize", folder / self.manifest["normalizer"])
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if module.NORMALIZER != d["normalize"]:
                raise SystemExit(f"{folder}: normalize.py is version {module.NORMALIZER}, the model {d['normalize']}")
            self.normalize = module.normalize
        if self.kind in ("char", "word"):
            self.index = {t: i for i, t in enumerate(d["tokens"]) if i > self.unk}
        else:
            import sentencepiece as spm

            self.sp = spm.SentencePieceProcessor(model_file=str(folder / d["sentencepiece_model"]))
            self.newline = self.sp.piece_to_id("\n")

    def encode(self, text: str) -> list[int]:
        if self.normalize is not None:
            text = self.normalize(text)
        get, unk = self.index.get if self.kind in ("char", "word") else None, self.unk
        if self.kind == "char":
            return [get(c, unk) for c in text]
        if self.kind == "word":
            return [get(w, unk) for w in text.split()]
        ids: list[int] = []
        for i, line in enumerate(self.sp.encode(text.split("\n"))):  # line by line, joined by the newline piece
            ids += ([self.newline] if i else []) + line
        return ids

    def decoder(self):
        """Text of ids as they come: bytes joined, held back only inside an unfinished UTF-8 character."""
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        return lambda i=None: dec.decode(b"", final=True) if i is None else dec.decode(self.piece_bytes[i])

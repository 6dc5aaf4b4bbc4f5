"""Text in, token ids out: reading corpora, the train/validation split, and LM batch layouts."""

from __future__ import annotations

import random
from pathlib import Path

from .errors import LstmTextError


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file, with one clear error for each way it can be unusable."""
    p = Path(path)
    if str(path) == "-":
        raise LstmTextError("reading a corpus from stdin is not supported; give a file path")
    if not p.exists():
        raise LstmTextError(f"file not found: {p}")
    if p.is_dir():
        raise LstmTextError(f"{p} is a directory; give a text file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise LstmTextError(f"cannot read {p}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LstmTextError(
            f"{p} is not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); convert it to UTF-8 first"
        ) from None
    return text.removeprefix("\ufeff")  # a BOM is an encoding mark, not text


def resolve_corpus(arg: str) -> Path:
    """A path to a text file, or the name of a registered dataset (see ``datasets.REGISTRY``)."""
    from . import datasets

    p = Path(arg)
    if not p.exists() and arg in datasets.REGISTRY:
        return datasets.resolve(arg)
    return p


def read_corpus(args: list[str]) -> str:
    if not args:
        raise LstmTextError("no corpus given: pass a text file or a dataset name such as tinyshakespeare")
    parts = [read_text(resolve_corpus(a)) for a in args]
    for a, t in zip(args, parts):
        nul = t.find("\x00")
        if nul >= 0:  # valid UTF-8, but a training corpus with NULs is almost always a binary file given by mistake
            raise LstmTextError(
                f"{a} contains NUL bytes (first at character {nul}): is it a binary file? Give a text file"
            )
    text = "\n".join(t if t.endswith("\n") or i == len(parts) - 1 else t for i, t in enumerate(parts))
    if not text.strip():
        raise LstmTextError(f"the corpus {' '.join(args)} is empty")
    return text


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """The first (1 - f) of the characters train, the last f validate (nanoGPT's shakespeare_char split)."""
    n = int(len(text) * (1.0 - val_fraction))
    return text[:n], text[n:]


class StreamBatches:
    """Truncated-BPTT windows over one token stream laid out as B contiguous rows.

    The stream is cut into B rows (pytorch/examples word_language_model's batchify)::

        a b c d e f g h i j k l m n o p q r s t u v w x   ->   B = 4 rows
        ┌ a b c d e f ┐
        │ g h i j k l │   step i reads columns [i*T, i*T + T) of every row as input and the
        │ m n o p q r │   same columns shifted by one as targets; the LSTM state carries from
        └ s t u v w x ┘   one window to the next, so every token sees its whole row as context.

    Each epoch starts at a random column offset in [0, T) (seeded), so window edges move between epochs.
    """

    def __init__(self, ids, batch_size: int, seq_len: int, seed: int = 0):
        import torch

        self.ids = torch.as_tensor(ids, dtype=torch.long)
        self.B, self.T, self.seed = batch_size, seq_len, seed
        assert len(self.ids) // batch_size >= seq_len + 1, "the caller sizes B so one window fits"

    def steps_per_epoch(self) -> int:
        return (len(self.ids) // self.B - 1) // self.T

    def window(self, epoch: int, i: int):
        """The i-th (x, y) pair of an epoch, each (B, T): addressable, so a resumed run picks up exactly."""
        spe = self.steps_per_epoch()
        cols = spe * self.T + 1
        slack = min(self.T - 1, len(self.ids) - self.B * cols)  # how far the window grid may shift
        offset = random.Random(self.seed * 1_000_003 + epoch).randint(0, slack) if epoch else 0
        rows = self.ids[offset : offset + cols * self.B].view(self.B, cols)  # (B, cols)
        s = i * self.T
        return rows[:, s : s + self.T], rows[:, s + 1 : s + 1 + self.T]


def eval_windows(ids, batch_size: int, seq_len: int):
    """Every token of ``ids`` after the first, as (x, y, mask) windows of B contiguous rows.

    Rows are the stream cut into B near-equal contiguous pieces; the last window of each row may be short,
    so a mask marks real targets. State carries across windows exactly as in training.
    """
    import torch

    ids = torch.as_tensor(ids, dtype=torch.long)
    n = len(ids) - 1  # predicted tokens
    B = max(1, min(batch_size, n // max(seq_len, 1)))
    per = -(-n // B)  # ceil
    x = torch.zeros(B, per, dtype=torch.long)
    y = torch.zeros(B, per, dtype=torch.long)
    m = torch.zeros(B, per, dtype=torch.bool)
    for b in range(B):
        s, e = b * per, min((b + 1) * per, n)
        x[b, : e - s] = ids[s:e]
        y[b, : e - s] = ids[s + 1 : e + 1]
        m[b, : e - s] = True
    for s in range(0, per, seq_len):
        yield x[:, s : s + seq_len], y[:, s : s + seq_len], m[:, s : s + seq_len]

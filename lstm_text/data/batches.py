"""Batch layouts: truncated-BPTT windows over one token stream (LM), evaluation windows, and padded,
length-bucketed batches of lines (classifier). Every training batch is addressable by (epoch, index), so a
resumed run continues with exactly the batch it would have seen."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Protocol

from ..tokenizer import PAD

if TYPE_CHECKING:
    import numpy as np


class TokenIds(Protocol):
    """A token stream read by windows: ``data.tokens.TokenFile`` (on disk) or ``Ids`` (in memory)."""

    def __len__(self) -> int: ...

    def read(self, start: int, n: int) -> np.ndarray:
        """ids[start : start + n] as int64."""
        ...


class Ids:
    """Token ids held in memory with ``TokenFile``'s interface (``len``, ``read``): tests and small texts."""

    def __init__(self, ids):
        import numpy as np

        self.ids = np.asarray(ids, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, start: int, n: int) -> np.ndarray:
        return self.ids[start : start + n]


class StreamBatches:
    """Truncated-BPTT windows over one token stream laid out as R contiguous rows.

    The stream is cut into R rows (pytorch/examples word_language_model's batchify)::

        a b c d e f g h i j k l m n o p q r s t u v w x   ->   R = 4 rows
        ┌ a b c d e f ┐
        │ g h i j k l │   step i reads columns [i*T, i*T + T) of every row as input and the
        │ m n o p q r │   same columns shifted by one as targets; the LSTM state carries from
        └ s t u v w x ┘   one window to the next, so every token sees its whole row as context.

    Under data parallelism rank r of W reads rows [r*R/W, (r+1)*R/W): W processes together take exactly the
    steps one process with all R rows would. Rows are read straight from the token file (``ids.read``), so the
    stream may be far larger than memory. Each epoch starts at a random column offset in [0, T) (seeded), so
    window edges move between epochs.
    """

    def __init__(self, ids, rows: int, seq_len: int, seed: int = 0, part: tuple[int, int] | None = None):
        self.ids: TokenIds = ids if hasattr(ids, "read") else Ids(ids)
        self.R, self.T, self.seed = rows, seq_len, seed
        self.lo, self.hi = part or (0, rows)
        self.B = self.hi - self.lo
        assert len(self.ids) // rows >= seq_len + 1, "the caller sizes R so one window fits"

    def steps_per_epoch(self) -> int:
        return (len(self.ids) // self.R - 1) // self.T

    def window(self, epoch: int, i: int):
        """The i-th (x, y) pair of an epoch, each (B, T) int64: addressable, so a resumed run picks up exactly."""
        import numpy as np
        import torch

        spe = self.steps_per_epoch()
        cols = spe * self.T + 1
        slack = min(self.T - 1, len(self.ids) - self.R * cols)  # how far the window grid may shift
        offset = random.Random(self.seed * 1_000_003 + epoch).randint(0, slack) if epoch else 0
        s = offset + i * self.T
        w = torch.from_numpy(np.stack([self.ids.read(s + b * cols, self.T + 1) for b in range(self.lo, self.hi)]))
        return w[:, :-1], w[:, 1:]  # (B, T+1) -> x, y (B, T)


def eval_windows(ids, batch_size: int, seq_len: int):
    """Every token of ``ids`` after the first, as (x, y, mask) windows of B contiguous rows.

    Rows are the stream cut into B near-equal contiguous pieces; the last window of each row may be short,
    so a mask marks real targets. State carries across windows exactly as in training. ``ids`` may be a
    list, an array or a token file (``read``): windows are read as they are needed, so a split of any size
    is measured in bounded memory.
    """
    import numpy as np
    import torch

    ids = ids if hasattr(ids, "read") else Ids(ids)
    n = len(ids) - 1  # predicted tokens
    B = max(1, min(batch_size, n // max(seq_len, 1)))
    per = -(-n // B)  # ceil
    for s in range(0, per, seq_len):
        x = np.zeros((B, seq_len), dtype=np.int64)
        y = np.zeros((B, seq_len), dtype=np.int64)
        m = np.zeros((B, seq_len), dtype=bool)
        for b in range(B):
            lo, hi = b * per + s, min(b * per + min(s + seq_len, per), n)  # predicted positions [lo, hi)
            if hi <= lo:
                continue
            w = ids.read(lo, hi - lo + 1)
            x[b, : hi - lo], y[b, : hi - lo], m[b, : hi - lo] = w[:-1], w[1:], True
        t = min(seq_len, per - s)
        yield torch.from_numpy(x[:, :t]), torch.from_numpy(y[:, :t]), torch.from_numpy(m[:, :t])


def pad_batch(seqs: list[list[int]], device="cpu"):
    """Right-padded ids (B, T) and lengths (B,) as torch tensors."""
    import torch

    T = max(1, max(len(s) for s in seqs))
    x = torch.full((len(seqs), T), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s[:T], dtype=torch.long)
    return x.to(device), torch.tensor([len(s) for s in seqs], device=device)


class LineBatches:
    """Shuffled batches of lines of similar lengths: each epoch shuffles, sorts within chunks of 50 batches
    (little padding), then shuffles the batches. Epoch e's order is the (e+1)-th draw of one seeded
    generator, so any epoch's batches can be rebuilt on resume."""

    def __init__(self, seqs: list[list[int]], batch_size: int, seed: int = 0):
        self.seqs, self.B, self.seed = seqs, batch_size, seed
        self._epoch, self._rng = -1, random.Random(seed)
        self._batches: list[list[int]] = []

    def steps_per_epoch(self) -> int:
        return -(-len(self.seqs) // self.B)

    def _draw(self) -> list[list[int]]:
        idx = list(range(len(self.seqs)))
        self._rng.shuffle(idx)
        chunk = self.B * 50
        batches = []
        for s in range(0, len(idx), chunk):
            part = sorted(idx[s : s + chunk], key=lambda i: len(self.seqs[i]))
            batches += [part[j : j + self.B] for j in range(0, len(part), self.B)]
        self._rng.shuffle(batches)
        return batches

    def indices(self, epoch: int, i: int) -> list[int]:
        """The line indices of batch ``i`` of ``epoch``."""
        if epoch < self._epoch:
            self._epoch, self._rng = -1, random.Random(self.seed)
        while self._epoch < epoch:
            self._batches, self._epoch = self._draw(), self._epoch + 1
        return self._batches[i]

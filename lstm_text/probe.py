"""What an LSTM does on a text: every layer's gates, cell state and hidden state per token, the model's
surprisal, cells that track a signal of the text (``find``), the forget gates' memory (``time_constants``) and
what ``lstm-text inspect`` shows of them (``view``).

The values are computed from the model's own packed weights (``infer.packed``) one token at a time, as
generation steps them; ``tests/test_inspect.py`` recomputes them from the raw weights. NumPy only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .errors import LstmTextError
from .infer.packed import pack_lm_head, pack_lstm
from .tokenizer import StreamDecoder

QUANTITIES = ("cell", "hidden", "input", "forget", "output")  # what a cell shows: its state, output or a gate
SIGNALS = ("quote", "line-position", "bracket-depth", "word-start")  # built-in ``find`` signals; else a regex
MAX_TOKENS = 20_000  # a longer text is inspected on its first this-many tokens (L x T x H x 5 floats held)
MEMORY_EDGES = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, math.inf)  # tau bins in tokens


@dataclass
class Trace:
    """One model's run over one text: arrays per token (T), layer (L) and cell (H)."""

    text: str  # the tokens' text, what ``spans`` index: the input's characters where the tokens decode to them
    ids: list[int]
    tokens: list[str]  # each token's text
    spans: list[tuple[int, int]]  # each token's [start, end) in ``text``
    values: dict[str, np.ndarray]  # QUANTITIES -> (L, T, H), after reading each token
    surprisal: np.ndarray | None  # (T,) bits, -log2 p(token | tokens before); NaN for the first; None: no LM head
    truncated: bool = False  # the text had more than ``max_tokens`` tokens: its first ones were read

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.values["cell"].shape  # (L, T, H)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5  # no overflow for large |x|


def run(cfg, weights: dict[str, np.ndarray], tokenizer, text: str, max_tokens: int = MAX_TOKENS) -> Trace:
    """Read ``text`` one token at a time from a zero state and record every layer's gates and states.

    Args:
        cfg: the model's ``ModelConfig`` (a unidirectional LSTM).
        weights: its float32 tensors by stored name (``checkpoint.Checkpoint.weights``).
        tokenizer: its tokenizer.
        text: what to read; its first ``max_tokens`` tokens are used.
    """
    if cfg.bidirectional:
        raise LstmTextError("inspect reads left to right: a bidirectional classifier has no single reading order")
    ids = tokenizer.encode(text)
    truncated, ids = len(ids) > max_tokens, ids[:max_tokens]
    if not ids:
        raise LstmTextError("the text is empty: give some text to inspect")
    dec, tokens, spans, pos = StreamDecoder(tokenizer), [], [], 0
    for i in ids:
        piece = dec.push(i)
        tokens.append(piece)
        spans.append((pos, pos + len(piece)))
        pos += len(piece)
    decoded, original = "".join(tokens), text[:pos]
    if decoded != original and len(original) == pos and all(a == b or b == "\ufffd" for a, b in zip(original, decoded)):
        tokens = [original[a:b] for a, b in spans]  # unknown characters: show the text's own, not U+FFFD
    T, H = len(ids), cfg.hidden
    out = {q: np.empty((cfg.layers, T, H), np.float32) for q in QUANTITIES}
    x = np.empty(0, np.float32)  # (T, in): the layer below's hidden states (layer 0 reads the embedding table)
    for k, layer in enumerate(pack_lstm(cfg, weights)):  # gates in the packed order [i, f, o | g]
        if k == 0:
            assert layer.table is not None  # the first layer reads its input through its table
            pre = layer.table[0][ids]  # (T, 4H)
        else:
            w_in, bias = layer.projection()
            pre = x @ w_in[0] + bias[0]  # (T, 4H)
        h, c = np.zeros(H, np.float32), np.zeros(H, np.float32)
        for t in range(T):
            g = pre[t] + h @ layer.w_hh[0]  # (4H,)
            ifo = _sigmoid(g[: 3 * H])
            c = ifo[H : 2 * H] * c + ifo[:H] * np.tanh(g[3 * H :])
            h = ifo[2 * H :] * np.tanh(c)
            out["input"][k, t], out["forget"][k, t], out["output"][k, t] = ifo[:H], ifo[H : 2 * H], ifo[2 * H :]
            out["cell"][k, t], out["hidden"][k, t] = c, h
        x = out["hidden"][k]  # (T, H)
    surprisal = None
    if cfg.lm_head:
        w, b = pack_lm_head(cfg, weights)  # (V, H), (V,)
        logits = x[:-1] @ w.T + b  # (T-1, V): the prediction of each next token
        logits = logits - logits.max(-1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        surprisal = np.full(T, np.nan)
        surprisal[1:] = -logp[np.arange(T - 1), ids[1:]] / math.log(2)
    return Trace("".join(tokens), ids, tokens, spans, out, surprisal, truncated)


def untrained_weights(cfg, seed: int = 0) -> dict[str, np.ndarray]:
    """The weights an ``LSTMModel`` of ``cfg`` starts training from (seeded): the baseline for ``time_constants``."""
    import torch

    from .model import LSTMModel

    torch.manual_seed(seed)
    return {k: v.detach().float().numpy() for k, v in LSTMModel(cfg).state_dict().items()}


# -- signals of the text -----------------------------------------------------------------------------------
def char_signal(text: str, name: str) -> np.ndarray:
    """A signal per character of ``text``, describing the text after reading that character.

    ``quote``: 1 inside "..." (the opening quote included, the closing one not); ``line-position``: characters
    since the last line break (0 at the break); ``bracket-depth``: open (), [] and {} brackets;
    ``word-start``: 1 on the first character of a word; anything else is a regular expression (multiline):
    1 on the characters of its matches.
    """
    n = len(text)
    s = np.zeros(n, np.float32)
    if name == "quote":
        inside = 0
        for i, ch in enumerate(text):
            if ch == '"':
                inside ^= 1
            s[i] = inside
    elif name == "line-position":
        col = 0
        for i, ch in enumerate(text):
            col = 0 if ch == "\n" else col + 1
            s[i] = col
    elif name == "bracket-depth":
        depth = 0
        for i, ch in enumerate(text):
            depth = depth + 1 if ch in "([{" else max(depth - 1, 0) if ch in ")]}" else depth
            s[i] = depth
    elif name == "word-start":
        for i, ch in enumerate(text):
            s[i] = ch.isalnum() and (i == 0 or not text[i - 1].isalnum())
    else:
        try:
            pattern = re.compile(name, re.MULTILINE)
        except re.error as e:
            raise LstmTextError(
                f"{{signal}} {name!r} is neither a built-in signal ({', '.join(SIGNALS)}) nor a valid regular "
                f"expression ({e})",
                "signal",
            ) from None
        for m in pattern.finditer(text):
            s[m.start() : m.end()] = 1
    return s


def token_signal(trace: Trace, name: str) -> np.ndarray:
    """``char_signal`` per token (T,): its value at each token's last character (a token without characters,
    a partial UTF-8 byte, keeps the value before it)."""
    s = char_signal(trace.text, name)
    last = np.array([end - 1 for _, end in trace.spans])
    last = np.maximum.accumulate(np.where(last >= 0, last, -1))  # empty spans: the character before
    return np.where(last >= 0, s[np.maximum(last, 0)], 0.0).astype(np.float32)


def correlations(values: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Pearson correlation of each cell's activation ``values`` (L, T, H) with ``signal`` (T,): (L, H); a cell
    that never changes scores 0."""
    s = signal.astype(np.float64) - signal.mean()
    a = values.astype(np.float64) - values.mean(1, keepdims=True)  # (L, T, H)
    num = np.einsum("t,lth->lh", s, a)
    den = np.sqrt((s * s).sum() * (a * a).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, 0.0)


def find(trace: Trace, signal: str, quantity: str = "cell", top: int = 10, layer: int | None = None) -> dict:
    """The cells whose ``quantity`` tracks ``signal`` best, by |Pearson r|.

    Returns {"signal", "quantity", "values" (T,) the signal per token, "r" (L, H), "top": [{"layer", "cell",
    "r"}, ...]}; ``layer`` limits the ranking to one layer.
    """
    check_quantity(quantity)
    s = token_signal(trace, signal)
    if s.min() == s.max():
        what = "no match of it" if signal not in SIGNALS else "the same value everywhere"
        raise LstmTextError(
            f"{{signal}} {signal!r}: the signal has {what} in this text, so no cell can track it", "signal"
        )
    r = correlations(trace.values[quantity], s)  # (L, H)
    L, H = r.shape
    rank = np.abs(r).copy()
    if layer is not None:
        check_cell(trace, layer, 0)
        rank[np.arange(L) != layer] = -1
    order = np.argsort(-rank, axis=None, kind="stable")[: max(top, 0)]
    best = [{"layer": int(i // H), "cell": int(i % H), "r": float(r.flat[i])} for i in order if rank.flat[i] >= 0]
    return {"signal": signal, "quantity": quantity, "values": s, "r": r, "top": best}


def check_quantity(quantity: str) -> None:
    if quantity not in QUANTITIES:
        raise LstmTextError(f"{{quantity}} must be one of {', '.join(QUANTITIES)}, got {quantity!r}", "quantity")


def check_cell(trace: Trace, layer: int, cell: int) -> None:
    """One clear error for a layer or cell index the model does not have."""
    L, _, H = trace.shape
    if not 0 <= layer < L:
        raise LstmTextError(f"{{layer}} {layer} is out of range: this model has {L} layer(s), 0 to {L - 1}", "layer")
    if not 0 <= cell < H:
        raise LstmTextError(
            f"{{cell}} {cell} is out of range: this model has {H} cells per layer, 0 to {H - 1}", "cell"
        )


# -- memory -------------------------------------------------------------------------------------------------
def time_constants(trace: Trace) -> np.ndarray:
    """Each cell's memory in tokens over the text, tau = -1 / ln(mean forget gate): (L, H).

    A cell whose forget gate averages f keeps f^n of its state after n tokens, e^(-n / tau): tau is the span
    over which it forgets all but 1/e (a gate pinned at 1 gives inf)."""
    f = trace.values["forget"].astype(np.float64).mean(1)  # (L, H)
    with np.errstate(divide="ignore"):
        return np.where(f >= 1.0, np.inf, -1.0 / np.log(f))


def memory_histogram(tau: np.ndarray, edges: tuple[float, ...] = MEMORY_EDGES) -> np.ndarray:
    """Counts of cells per tau bin [edges[i], edges[i+1]) for each layer: (L, bins)."""
    e = np.asarray(edges, dtype=np.float64)
    idx = np.clip(np.searchsorted(e, tau, side="right") - 1, 0, len(e) - 2)  # (L, H): inf lands in the last bin
    return np.stack([np.bincount(row, minlength=len(e) - 1) for row in idx])


# -- what to show -------------------------------------------------------------------------------------------
@dataclass
class View:
    """What ``lstm-text inspect`` shows of a trace: the cell it colours the text by, the ``find`` ranking and
    each cell's memory."""

    trace: Trace
    quantity: str  # what a cell shows (QUANTITIES)
    layer: int  # the layer of ``cell``, and the one a page opens on
    cell: int | None  # the cell the text is coloured by; None: by surprisal
    chosen: bool  # ``cell`` was asked for (not the best of ``found``)
    found: dict | None  # ``find``'s result, for a signal
    tau: np.ndarray  # (L, H) each cell's memory in tokens (``time_constants``)

    @property
    def start(self) -> str:
        """The quantity a page opens on: the cell's, or surprisal when there is no cell and the model has it."""
        return self.quantity if self.cell is not None or self.trace.surprisal is None else "surprisal"

    def memory(self) -> tuple[np.ndarray, float]:
        """The cells per tau bin of each layer (L, bins over MEMORY_EDGES) and the median tau of all cells."""
        return memory_histogram(self.tau), float(np.median(self.tau))  # inf sorts last: a median over all cells

    def colours(self) -> tuple[np.ndarray, bool, float]:
        """What colours the text: (values (T,), signed, scale), the cell's values or, without one, surprisal in
        bits (0 to 8+)."""
        if self.cell is None:
            assert self.trace.surprisal is not None, "no cell and no surprisal: nothing colours the text"
            return self.trace.surprisal, False, 8.0
        v = self.trace.values[self.quantity][self.layer, :, self.cell]
        signed = self.quantity in ("cell", "hidden")
        return v, signed, max(float(abs(v).max()), 1e-6) if signed else 1.0


def view(
    trace: Trace,
    *,
    cell: int | None = None,
    layer: int | None = None,
    quantity: str = "cell",
    signal: str | None = None,
    top: int = 10,
) -> View:
    """Choose what to show of ``trace``: ``cell`` of ``layer`` (default: the top layer), else the cell that
    tracks ``signal`` best (``find``, ranked within ``layer`` when given), else surprisal."""
    L = trace.shape[0]
    if layer is not None:
        check_cell(trace, layer, 0)
    found = find(trace, signal, quantity, top, layer) if signal else None
    chosen = cell is not None
    if cell is not None:
        layer = L - 1 if layer is None else layer
        check_cell(trace, layer, cell)
    elif found:
        layer, cell = found["top"][0]["layer"], found["top"][0]["cell"]
    layer = L - 1 if layer is None else layer
    return View(trace, quantity, layer, cell, chosen, found, time_constants(trace))


def to_json(trace: Trace, found: dict | None = None, decimals: int = 4) -> dict:
    """The arrays as JSON-able lists (for notebooks): values per quantity (L, T, H), surprisal (T,), tau (L, H)."""

    def r(a):
        return np.round(a.astype(np.float64), decimals).tolist()

    tau = time_constants(trace)
    d = {
        "text": trace.text,
        "tokens": trace.tokens,
        "ids": trace.ids,
        "spans": [list(s) for s in trace.spans],
        "shape": dict(zip(("layers", "tokens", "cells"), trace.shape)),
        "surprisal_bits": None
        if trace.surprisal is None
        else [None if math.isnan(v) else round(float(v), decimals) for v in trace.surprisal],
        **{q: r(trace.values[q]) for q in QUANTITIES},
        "tau": [[None if math.isinf(v) else round(float(v), decimals) for v in row] for row in tau],
    }
    if found is not None:
        d["find"] = {
            "signal": found["signal"],
            "quantity": found["quantity"],
            "values": r(found["values"]),
            "r": r(found["r"]),
            "top": found["top"],
        }
    return d

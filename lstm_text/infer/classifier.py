"""Classification inference in NumPy and a compiled cell: batched, streaming, in input order, without torch.

``lstm-text classify`` starts in a fraction of a second because nothing here imports torch (importing
torch alone takes ~1.5 s on a 2-core machine). Each time step is one NumPy matmul and one call of the fused
cell (``_cell.c``, built at install when a C compiler is there), which releases the GIL, so batches run in
parallel threads; without the compiled cell the same steps run as NumPy operations. ``Classifier`` computes
the same function as ``LSTMModel.classify`` within float tolerance on both paths (tests/test_model.py).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from types import ModuleType

import numpy as np

from ..config import ClassifyConfig, ModelConfig
from ..errors import LstmTextError
from ..tokenizer import PAD
from .packed import pack_lstm, pool_features, pooled_features, quantize_rows

_cell: ModuleType | None
try:  # the fused cell, compiled at install when a C compiler is there (setup.py); else the same steps in NumPy
    from . import _cell
except ImportError:
    _cell = None

Rows = np.ndarray | tuple[np.ndarray, np.ndarray]  # float32 rows, or int8 rows and their scales

MAX_TOKENS = 1024  # a line longer than this is classified on its head and tail (``cut``): bounded memory and time
BATCH = ClassifyConfig.batch_size  # lines per batch (classify --batch-size)
BATCH_TOKENS = 65_536  # padded tokens per batch at most (~125 MB of work arrays): long lines come in smaller batches


def cut(ids: list[int], n: int) -> list[int]:
    """At most ``n`` tokens: a longer line keeps its first quarter and its last three quarters. A review's
    verdict tends to come at the end, and head+tail beats head-only on IMDB (Sun et al. 2019, "How to
    Fine-Tune BERT for Text Classification")."""
    if len(ids) <= n:
        return ids
    head = n // 4
    return ids[:head] + ids[len(ids) - (n - head) :]


def encode_lines(tokenizer, texts: Iterable[str], max_tokens: int = MAX_TOKENS) -> list[list[int]]:
    """Token ids of each text, ``cut`` to ``max_tokens``; a very long text is trimmed in characters first
    (keeping both ends), so its tokenization time is bounded too."""
    chars = max_tokens * 16
    return [
        cut(tokenizer.encode(t if len(t) <= chars else t[: chars // 4] + " " + t[-(chars - chars // 4) :]), max_tokens)
        for t in texts
    ]


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@functools.cache
def _pool(threads: int):
    """One worker pool per thread count for the whole process, shared by every ``Classifier``."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(threads, thread_name_prefix="lstm-text")


class Classifier:
    """The inference path of a classification head: ``logits`` and ``probs`` for token id lists.

    Batches are sorted by length so each pads only to its own longest line, and they run without packing:
    the backward direction reads each line reversed within its own length, both directions step together
    in one batched matmul, and the first layer's input projection of an embedding is a row of a
    precomputed (V, 4H) table per direction.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        weights: dict[str, np.ndarray],
        threads: int = 0,
        quantize: str = "",
        native: bool = True,
    ):
        """``threads``: batches run in parallel (0: one per CPU core, at most 4). ``quantize="int8"``: the
        (V, 4H) lookup table, by far the largest array, is held in int8 with one scale per row (4x less
        memory; the recurrent products stay in float32). ``native``: the compiled cell (_cell.c) when the install
        built it; False runs the NumPy steps."""
        if not cfg.labels:
            raise LstmTextError("this model has no classification head; train one with 'lstm-text train-classifier'")
        if quantize not in ("", "int8"):
            raise LstmTextError(f"unknown {{quantize}} {quantize!r} (choose int8)", "quantize")
        self.cfg, self.H, self.D = cfg, cfg.hidden, 2 if cfg.bidirectional else 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.threads = threads or min(4, cores)
        self.native = native and _cell is not None
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        # Per layer, the input rows (the first layer: a (D, V, 4H) table, (int8 rows, scales) when quantized;
        # later layers: their bias (D, 1, 4H)), the input weights (later layers: (D, in, 4H)) and w_hh (D, H, 4H).
        self.layers: list[tuple[Rows, np.ndarray | None, np.ndarray]] = []
        # Without int8, the first layer's (D, V, 4H) table fills in row by row as tokens first appear: a
        # one-line classify starts without computing 60,000 rows, and untouched rows never become resident.
        lazy = not quantize
        self.have: np.ndarray | None = None  # (V,) bool: table rows computed so far (lazy table)
        for layer in pack_lstm(cfg, w, exp_form=True, table=not lazy):  # one exp covers all four gates
            if layer.table is not None:  # (D, V, 4H), int8 rows and their scales when quantized
                self.layers.append((quantize_rows(layer.table) if quantize else layer.table, None, layer.w_hh))
            elif lazy and not self.layers:
                self.embed, (self.w_in0, self.bias0) = w["embed.weight"], layer.projection()
                table = np.empty((self.D, cfg.vocab_size, 4 * self.H), np.float32)  # pages mapped on first touch
                self.have = np.zeros(cfg.vocab_size, bool)
                self.layers.append((table, None, layer.w_hh))
            else:
                w_in, bias = layer.projection()
                self.layers.append((bias[:, None], w_in, layer.w_hh))
        # numerators over the gates' 1 + exp: sigmoid for i, f, o; -4 sigmoid(2x) = -2 tanh(x) - 2 for the cell input
        self.numer = np.repeat(np.array([1, 1, 1, -4], np.float32), self.H)
        self.head_w = np.ascontiguousarray(w["cls_head.1.weight"].T)  # (3*D*H, C)
        self.head_b = w["cls_head.1.bias"]

    def _fill(self, ids: np.ndarray) -> None:
        """Compute the table rows of tokens seen for the first time: embedding @ W_ih + b, per direction.

        Batches run in threads: two may compute the same new row at once, writing identical values, and a
        row is marked present only after it is written."""
        if self.have is None:
            return
        flat = ids.ravel()
        miss = flat[~self.have[flat]]
        if len(miss):
            seen = np.zeros(len(self.have), bool)  # not np.unique: it imports numpy.ma, 20 ms of a one-line classify
            seen[miss] = True
            new = np.flatnonzero(seen)
            table = self.layers[0][0]
            assert isinstance(table, np.ndarray)  # a lazy table is float32, never int8
            e = self.embed[new]  # (n, E)
            for d in range(self.D):
                table[d, new] = e @ self.w_in0[d] + self.bias0[d]
            self.have[new] = True

    def _batch(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Class logits (B, C) for right-padded ids (B, T) of lengths (B,), each at least 1."""
        with np.errstate(over="ignore"):  # exp overflows to inf on saturated gates, which is exact (see below)
            return self._forward(ids, lengths)

    def _forward(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        self._fill(ids)
        B, T = ids.shape
        H, D = self.H, self.D
        ar = np.arange(T)
        rev = np.maximum(lengths[:, None] - 1 - ar[None, :], 0)  # (B, T): t -> len-1-t, its own inverse
        cols = np.arange(B)[None, :]
        x = None  # (T, D, B, H): the layer's outputs, each direction in its own reading order
        for k, (a, w_in, w_hh) in enumerate(self.layers):
            # Each step adds row ``index[t, d, b]`` of ``rows`` (R, 4H) to the gates: for the first layer a table
            # row per token, for later layers the input projection of the layer below.
            if k == 0:
                reading = np.stack([ids.T, ids[cols.T, rev].T][:D], 1)  # (T, D, B): backward reads reversed
                q, scales = a if isinstance(a, tuple) else (a, None)  # int8 rows and their scales, or float32
                V = q.shape[1]
                index = reading + (np.arange(D) * V)[None, :, None]  # (T, D, B) into (D*V, 4H)
                rows, scales = q.reshape(D * V, 4 * H), None if scales is None else scales.reshape(D * V)
            else:
                assert x is not None and w_in is not None and not isinstance(a, tuple)  # a later layer's
                seq = x[:, 0] if D == 1 else np.concatenate([x[:, 0], x[rev.T, 1, cols]], -1)  # (T, B, in)
                views = [seq, seq[rev.T, cols]][:D]  # per direction, in its reading order
                pre = np.stack([views[d] @ w_in[d] + a[d] for d in range(D)])  # (D, T, B, 4H)
                rows, scales = pre.reshape(D * T * B, 4 * H), None
                index = np.arange(D * T * B).reshape(D, T, B).transpose(1, 0, 2)  # (T, D, B)
            x = np.empty((T, D, B, H), np.float32)
            if not self.native:
                self._steps_numpy(rows, scales, index, w_hh, x)
            elif k < len(self.layers) - 1:
                self._steps_native(rows, scales, np.ascontiguousarray(index), w_hh, x)
            else:  # the top layer pools as it goes
                logits = self._steps_native(rows, scales, np.ascontiguousarray(index), w_hh, x, lengths)
                assert logits is not None  # given lengths, it pools
                return logits
        assert x is not None  # a model has at least one layer
        feats = pool_features(x, lengths)  # (B, 3*D*H)
        return feats @ self.head_w + self.head_b  # (B, C)

    def _steps_native(self, rows, scales, index, w_hh, x, lengths=None) -> np.ndarray | None:
        """The time steps of one layer with the compiled cell (_cell.c): x[t] (D, B, H) for t < T. With
        ``lengths``, the top layer: x is scratch, pooled step by step, and the class logits (B, C) returned."""
        T, D, B, H = x.shape
        cell = _cell
        assert cell is not None  # only called when self.native
        h = np.zeros((D, B, H), np.float32)  # then a view of x[t - 1]
        c = np.zeros((D, B, H), np.float32)
        g = np.empty((D, B, 4 * H), np.float32)
        if lengths is not None:
            lengths = np.ascontiguousarray(lengths, np.int64)
            last, mx, total = np.empty_like(h), np.full_like(h, -np.inf), np.zeros_like(h)
        for t in range(T):
            np.matmul(h, w_hh, out=g)
            h = x[t]
            cell.step(g, rows, scales, index[t], c, h)  # g += rows[index[t]]; the gates; c and h updated
            if lengths is not None:
                cell.pool(h, H, t, lengths, last, mx, total)
        if lengths is None:
            return None
        feats = pooled_features(last, mx, total / lengths[None, :, None])  # (B, 3*D*H)
        return feats @ self.head_w + self.head_b  # (B, C)

    def _steps_numpy(self, rows, scales, index, w_hh, x) -> None:
        """The same as ``_steps_native`` in NumPy, for installs without the compiled cell."""
        T, D, B, H = x.shape
        pre = rows[index] if scales is None else rows[index] * scales[index][..., None]  # (T, D, B, 4H)
        h = np.zeros((D, B, H), np.float32)
        c = np.zeros((D, B, H), np.float32)
        g = np.empty((D, B, 4 * H), np.float32)
        ig = np.empty((D, B, H), np.float32)
        tc = np.empty((D, B, H), np.float32)
        i_, f_, o_, s_ = (g[..., j * H : (j + 1) * H] for j in range(4))
        for t in range(T):
            # The weights are in ``exp_form`` (see ``ifog``): g = -x for i, f, o and -2x for the cell input.
            # c holds -2 times the cell state, so that exp(c) is the exp that tanh(cell) needs.
            np.matmul(h, w_hh, out=g)
            g += pre[t]
            np.exp(g, out=g)  # inf where x is very negative, and 1 / (1 + inf) = 0 is the right sigmoid
            g += 1.0
            np.divide(self.numer, g, out=g)  # i, f, o = sigmoid(x); s = -4 sigmoid(2x) = -2 tanh(x) - 2
            s_ += 2.0
            np.multiply(i_, s_, out=ig)
            c *= f_
            c += ig  # c = f * c - 2 i tanh(x): -2 times the cell state
            np.exp(c, out=tc)  # tanh(cell) = 2 / (1 + exp(-2 cell)) - 1
            tc += 1.0
            np.divide(2.0, tc, out=tc)
            tc -= 1.0
            h = x[t]
            np.multiply(o_, tc, out=h)  # h = o * tanh(cell)

    def logits(self, seqs: list[list[int]], batch_size: int = BATCH) -> np.ndarray:
        """Uncalibrated class logits (N, C) for token id lists, batched after sorting by length."""
        out = np.empty((len(seqs), len(self.cfg.labels)), np.float32)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))

        def run(idx: list[int]) -> None:
            lengths = np.array([max(1, len(seqs[i])) for i in idx])
            ids = np.full((len(idx), int(lengths.max())), PAD, dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(seqs[i])] = seqs[i]
            out[idx] = self._batch(ids, lengths)

        batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:  # ascending length: a batch ends at batch_size lines or BATCH_TOKENS padded tokens
            if cur and (len(cur) == batch_size or (len(cur) + 1) * len(seqs[i]) > BATCH_TOKENS):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        if len(batches) > 1 and self.threads > 1:  # NumPy releases the GIL inside each operation
            list(_pool(self.threads).map(run, batches))
        else:
            for idx in batches:
                run(idx)
        return out

    def probs(self, seqs: list[list[int]], batch_size: int = BATCH) -> np.ndarray:
        """Calibrated class probabilities (N, C)."""
        return softmax(self.logits(seqs, batch_size) / self.cfg.calibration_temperature)


def result(labels: list[str], p: np.ndarray | None, threshold: float = 0.0, abstain: str = "neutral") -> dict:
    """One line's result; ``p`` None (an empty line) gives label None.

    ``score`` is always the probability of the answered ``label``. Under ``threshold`` the answer is ``abstain``,
    whose score is its probability when the model has that label and None otherwise, and ``abstained_from``
    says what was declined: {"label", "score", "threshold"}.
    """
    if p is None:
        return {"label": None, "score": None, "probs": {}}
    probs = dict(zip(labels, p.tolist()))
    top = max(labels, key=probs.__getitem__)
    if threshold and probs[top] < threshold:
        declined = {"label": top, "score": probs[top], "threshold": threshold}
        return {"label": abstain, "score": probs.get(abstain), "probs": probs, "abstained_from": declined}
    return {"label": top, "score": probs[top], "probs": probs}


def score_text(r: dict) -> str:
    """The score column of text output: the label's probability, or what an abstention declined."""
    a = r.get("abstained_from")
    if a:
        return f"({a['label']} {a['score']:.3f} < {a['threshold']:g})"
    return "-" if r["score"] is None else f"{r['score']:.3f}"


def read_probs(
    clf: Classifier, tokenizer, texts: list[str], gate=None, second=None, batch_size: int = BATCH
) -> tuple[list[str] | None, list[np.ndarray | None]]:
    """Each text's language ("lang": ``gate``'s, None without a gate) and its probabilities over ``clf``'s labels:
    None for a blank text and for one the gate refuses (in a language the model does not read). ``second``: the
    ``ngram.Companion`` that reads alone the lines the gate gives it (``Gate.ALSO``) and, with weight
    ``second.mix``, joins ``clf`` on the lines in its ``shared`` languages; its probabilities are taken over
    ``clf``'s labels (a binary model's negative and positive, renormalised)."""
    from ..langid import Gate

    langs = gate(texts, batch_size) if gate is not None else None
    readers = [w for _, w in langs] if langs is not None else [Gate.OWN] * len(texts)
    who = [w if t.strip() else Gate.REFUSED for t, w in zip(texts, readers)]  # a blank text: nobody reads it
    out: list[np.ndarray | None] = [None] * len(texts)
    labels = clf.cfg.labels
    own = [i for i, w in enumerate(who) if w == Gate.OWN]
    if own:
        p = clf.probs(encode_lines(tokenizer, [texts[i] for i in own]), batch_size)  # (N, C)
        if second is not None and langs is not None:
            p = second.join(p, [texts[i] for i in own], [langs[i][0] for i in own], labels)
        for i, row in zip(own, p):
            out[i] = row
    other = [i for i, w in enumerate(who) if w == Gate.ALSO]
    if other and second is not None and langs is not None:
        for i, row in zip(other, second.probs([texts[i] for i in other], [langs[i][0] for i in other], labels)):
            out[i] = row
    return (None if langs is None else [lang for lang, _ in langs]), out


def classify_stream(
    clf: Classifier,
    tokenizer,
    lines: Iterable[str],
    *,
    batch_size: int = BATCH,
    window: int = 32,
    threshold: float = 0.0,
    abstain: str = "neutral",
    gate=None,
    second=None,
) -> Iterator[tuple[str, dict]]:
    """(line, result) in input order, reading at most ``batch_size * window`` lines ahead.

    Within that window lines are sorted by length so a batch pads only to its own longest line. ``gate``: a
    ``langid.Gate``; each result also has "lang", and a line the gate refuses (in a language the model does not
    read) gets label and score None, as an empty line does, without being classified; ``second`` reads the lines
    the gate gives it (``read_probs``).
    """
    labels = clf.cfg.labels

    def flush(buf):
        langs, probs = read_probs(clf, tokenizer, buf, gate, second, batch_size)
        res = [result(labels, p, threshold, abstain) for p in probs]
        if langs is not None:
            for r, lang in zip(res, langs):
                r["lang"] = lang
        return zip(buf, res)

    buf: list[str] = []
    for line in lines:
        buf.append(line)
        if len(buf) >= batch_size * window:
            yield from flush(buf)
            buf = []
    if buf:
        yield from flush(buf)


def explain(probs, text: str) -> list[tuple[str, float]]:
    """Word importances by occlusion: how much the predicted class's probability drops without each word.
    ``probs``: texts -> (N, C) probabilities (a classifier's, over its tokens)."""
    words = text.split()
    if not words:
        return []
    variants = [text] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    p = probs(variants)
    c = int(p[0].argmax())
    return [(w, float(p[0, c] - p[i + 1, c])) for i, w in enumerate(words)]

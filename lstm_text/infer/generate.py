"""Sampling text from a language model: the prompt runs once through the full-sequence path, then each
new token costs one LSTM step with the state carried (never re-running the context, unlike nanoGPT)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from ..config import GenerateConfig
from ..tokenizer import PAD, StreamDecoder
from .step import StepModel


def filter_logits(logits: torch.Tensor, cfg: GenerateConfig, seen: torch.Tensor | None) -> torch.Tensor:
    """Apply repetition penalty, temperature, top-k, top-p and min-p to logits (N, V), in place when it can."""
    logits = logits.float().contiguous()  # a fresh tensor per step from the model: ours to change
    logits[:, PAD] = float("-inf")  # padding is never text
    if cfg.repetition_penalty != 1.0 and seen is not None:
        pen = torch.where(logits > 0, logits / cfg.repetition_penalty, logits * cfg.repetition_penalty)
        logits = torch.where(seen, pen, logits)
    if cfg.greedy:
        return logits
    if cfg.temperature != 1.0:
        logits = logits / cfg.temperature
    if cfg.top_k and cfg.top_k < logits.size(-1):
        kth = torch.topk(logits, cfg.top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p < 1.0:
        sorted_l, idx = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_l, dim=-1)
        # drop a token when the tokens ranked above it already hold top_p of the mass
        drop = probs.cumsum(-1) - probs >= cfg.top_p
        logits = logits.masked_fill(drop.scatter(-1, idx, drop), float("-inf"))
    if cfg.min_p > 0:
        probs = torch.softmax(logits, dim=-1)
        logits = logits.masked_fill(probs < cfg.min_p * probs.amax(-1, keepdim=True), float("-inf"))
    return logits


def row_seed(seed: int | None, row: int) -> int:
    """Sample ``row`` of a request with ``seed`` draws from ``seed + row`` (no seed: a random one)."""
    if seed is None:
        return int.from_bytes(os.urandom(8), "little")
    return (seed + row) % 2**64


M64 = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2**64 / the golden ratio
VECTOR_ROWS = 8  # rows from which ``uniforms`` runs in NumPy


def _mix(z: int) -> int:
    """SplitMix64's finaliser (Steele et al. 2014) on a 64-bit integer."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def row_key(seed: int) -> int:
    """The key a row's draws derive from (SplitMix64 of its seed), computed once per row."""
    return _mix(seed & M64)


def uniforms(keys: list[int], counts: list[int]) -> np.ndarray:
    """The ``counts``-th uniform draw in [0, 1) of each row's key -> float64 (N,).

    Counter-based (SplitMix64 of the key and the draw's number): a row's draws depend on its own seed only,
    so a sample is the same alone or batched with any others. Many rows at once in NumPy's uint64 arithmetic,
    which wraps modulo 2**64 as SplitMix64 wants (13 us for 64 rows against 50 us in Python); a few rows as
    Python integers (a microsecond each, where NumPy's calls cost ten)."""
    if len(keys) < VECTOR_ROWS:
        return np.array([(_mix((k + (c + 1) * GOLDEN) & M64) >> 11) * 2.0**-53 for k, c in zip(keys, counts)])
    z = np.asarray(keys, dtype=np.uint64) + (np.asarray(counts, dtype=np.uint64) + np.uint64(1)) * np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)  # _mix, row-wise
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def categorical(probs: torch.Tensor, u: np.ndarray) -> torch.Tensor:
    """Token ids (N,) drawn from the rows of ``probs`` (N, V) by inverting their CDFs at ``u`` (N,) in [0, 1);
    a token of probability 0 is never drawn. (NumPy: a few microseconds where torch's calls cost tens.)"""
    cdf = np.cumsum(probs.numpy(), axis=-1, dtype=np.float64)  # (N, V)
    below = cdf <= (u * cdf[:, -1])[:, None]  # (N, V): the tokens whose cumulated mass the draw passed
    return torch.from_numpy(np.minimum(below.sum(-1), probs.size(-1) - 1))


class Draws:
    """The random numbers of N samples drawn in lockstep: row ``i`` from ``row_seed(seed, i)``."""

    def __init__(self, seed: int | None, n: int = 1):
        self.keys = [row_key(row_seed(seed, i)) for i in range(n)]
        self.count = 0

    def next(self) -> np.ndarray:
        """One uniform per row (N,)."""
        self.count += 1
        return uniforms(self.keys, [self.count - 1] * len(self.keys))


def sample_next(
    logits: torch.Tensor, cfg: GenerateConfig, draws: Draws, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """One token id per row of logits (N, V) -> (N,)."""
    logits = filter_logits(logits, cfg, seen)
    if cfg.greedy:
        return logits.argmax(-1)
    return categorical(torch.softmax(logits, dim=-1), draws.next())


class StopText:
    """Decoded text of one sample, cut at the first stop string; holds back what may start a stop string.

    Each stop string is matched by a Knuth-Morris-Pratt automaton fed one character at a time, so the cost is
    linear in the text whatever the stop strings' lengths (a naive search of the held-back tail for every
    prefix of every stop string costs the square of their length per token)."""

    def __init__(self, tokenizer, stops: list[str]):
        self.dec, self.stops = StreamDecoder(tokenizer), [s for s in stops if s]
        self.fail = [_failure(s) for s in self.stops]
        self.matched = [0] * len(self.stops)  # per stop string: its longest prefix the text ends with
        self.buf, self.done = "", False  # buf: the text not handed out yet (a possible start of a stop string)

    def push(self, token: int) -> str:
        if not self.stops:  # nothing to hold back or cut: the decoder's text as it is
            return self.dec.push(token)
        return self._emit(self.dec.push(token), final=False)

    def finish(self) -> str:
        return self._emit(self.dec.flush(), final=True)

    def _emit(self, piece: str, final: bool) -> str:
        if self.done:
            return ""
        start = len(self.buf)
        self.buf += piece
        for pos in range(start, len(self.buf)):
            ch = self.buf[pos]
            for j, (s, fail) in enumerate(zip(self.stops, self.fail)):
                k = self.matched[j]
                while k and s[k] != ch:
                    k = fail[k - 1]
                k = k + 1 if s[k] == ch else 0
                if k == len(s):  # the first stop string to end here; earlier ends were seen at earlier positions
                    self.done = True
                    out, self.buf = self.buf[: pos + 1 - k], ""
                    return out
                self.matched[j] = k
        keep = 0 if final else max(self.matched, default=0)
        out, self.buf = self.buf[: len(self.buf) - keep], self.buf[len(self.buf) - keep :]
        return out


def _failure(s: str) -> list[int]:
    """KMP's table: for each prefix s[:i+1], the length of its longest proper prefix that is also its suffix."""
    fail, k = [0] * len(s), 0
    for i in range(1, len(s)):
        while k and s[i] != s[k]:
            k = fail[k - 1]
        if s[i] == s[k]:
            k += 1
        fail[i] = k
    return fail


MAX_PROMPT_CHARS = 1_000_000  # a longer prompt is read from its last this-many characters


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    ids = tokenizer.encode(prompt[-MAX_PROMPT_CHARS:])
    if not ids:  # no prompt: start after a line break, the most neutral context a text has
        nl = tokenizer.encode("\n")
        ids = nl if nl and nl[0] != 1 else [PAD]
    return ids


def sample_tokens(
    model, tokenizer, prompt: str, cfg: GenerateConfig, num_samples: int = 1, quantize: str = "", steer=None
) -> Iterator[torch.Tensor]:
    """Yields the next token ids (N,) for N samples drawn as one batch, ``cfg.max_tokens`` times.

    ``quantize="int8"``: the per-token steps use int8 weights (the prompt is read in float32). ``steer``: an
    ``infer.steer.Steer`` picks each token instead of plain sampling (FUDGE); the LM's steps are the same."""
    draws = Draws(cfg.seed, num_samples)
    device = next(model.parameters()).device
    ids = prompt_ids(tokenizer, prompt)
    model.eval()
    with torch.inference_mode():
        seen = None
        if cfg.repetition_penalty != 1.0:
            seen = torch.zeros(num_samples, model.cfg.vocab_size, dtype=torch.bool)
            seen[:, ids] = True
        stepper = StepModel(model, quantize)
        logits, state = stepper.read(model, ids)  # the prompt once, even for N samples: logits (1, V)
        logits = logits.expand(num_samples, -1)  # (N, V)
        state = [(h.expand(num_samples, -1).contiguous(), c.expand(num_samples, -1).contiguous()) for h, c in state]
        rows = torch.arange(num_samples)
        for _ in range(cfg.max_tokens):
            tok = (steer.pick if steer is not None else sample_next)(logits.cpu(), cfg, draws, seen)  # (N,)
            if seen is not None:
                seen[rows, tok] = True
            yield tok
            logits, state = stepper.step(tok.to(device), state)  # one token per sample: (N, V)


def stream(model, tokenizer, prompt: str, cfg: GenerateConfig, quantize: str = "", steer=None) -> Iterator[str]:
    """Text pieces of one sample as they are produced."""
    text = StopText(tokenizer, cfg.stop)
    for tok in sample_tokens(model, tokenizer, prompt, cfg, quantize=quantize, steer=steer):
        piece = text.push(int(tok[0]))
        if piece:
            yield piece
        if text.done:
            return
    tail = text.finish()
    if tail:
        yield tail


def generate(
    model, tokenizer, prompt: str, cfg: GenerateConfig, num_samples: int = 1, quantize: str = "", steer=None
) -> list[str]:
    """``num_samples`` continuations of ``prompt``, drawn as one batch."""
    texts = [StopText(tokenizer, cfg.stop) for _ in range(num_samples)]
    outs: list[list[str]] = [[] for _ in range(num_samples)]
    for toks in sample_tokens(model, tokenizer, prompt, cfg, num_samples, quantize, steer):
        for i, t in enumerate(toks.tolist()):
            outs[i].append(texts[i].push(t))
        if all(t.done for t in texts):
            break
    return ["".join(o) + t.finish() for o, t in zip(outs, texts)]

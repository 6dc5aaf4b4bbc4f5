"""Continuous batching: many generations of one language model stepped together, as one batch per step.

An LSTM step reads all its weights whatever the batch, so 16 rows cost little more than one (the idea of the
continuous batching in vLLM, TGI and llama.cpp's server). Rows join between steps and leave at the next one:

    step t:    [a a a a | b b | c]           <- rows decoding; each row's token from its own settings and seed
    between:   d's prompt, next chunk  ----> d's state and logits  (one chunk per step: a long prompt does
    step t+1:  [a a a a | b b | c | d]          not stall the others)
    between:   b ended (stop string), c's client left
    step t+2:  [a a a a | d]

Each row samples with its request's settings and its own seeded generator, and a row's prompt is read alone
(never padded with others), so the same request with the same seed gives the same text whatever else runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..config import GenerateConfig
from .generate import StopText, categorical, filter_logits, prompt_ids, row_key, row_seed, uniforms
from .step import StepModel

PREFILL_CHUNK = 128  # prompt tokens read between two steps (what a long prompt costs the others per step)


class Sink:
    """Where a request's output goes; the engine calls these from its own thread."""

    def piece(self, choice: int, text: str) -> None:
        """More text of one choice."""

    def done(self, choice: int, finish: str, tokens: int) -> None:
        """A choice ended: ``finish`` "stop" (a stop string), "length" (max_tokens) or "cancelled"."""

    def cancelled(self) -> bool:
        """True once nobody waits for the output (checked before every step)."""
        return False


@dataclass
class Row:
    """One sample of one request."""

    sink: Sink
    choice: int
    cfg: GenerateConfig
    key: int  # its draws: ``generate.uniforms`` of this key (``row_key`` of its seed), numbered by ``draws``
    text: StopText
    ids: list[int]  # the prompt's token ids
    read: int = 0  # how many of them the model has read
    state: object = None  # the model's state while the prompt is read (nn.LSTM form)
    seen: torch.Tensor | None = None  # (V,) bool: tokens seen, for the repetition penalty
    tokens: int = 0  # tokens generated
    draws: int = 0  # random numbers drawn
    finish: str | None = None  # why it ends, set by the step that ends it


def sampling_key(cfg: GenerateConfig) -> tuple:
    """Rows whose settings give the same key are filtered together (the filters work row by row)."""
    return (cfg.temperature, cfg.top_k, cfg.top_p, cfg.min_p, cfg.repetition_penalty, cfg.greedy)


class BatchGenerator:
    """The rows of every live generation of one language model, advanced by ``step``; not thread-safe: one
    thread calls ``add`` and ``step`` (``serve.generation`` runs one such thread per model)."""

    def __init__(
        self,
        net,
        tokenizer,
        quantize: str = "",
        prefill_chunk: int = PREFILL_CHUNK,
        on_tokens: Callable[[], None] | None = None,
    ):
        """``on_tokens``: called when a step's text has gone to the sinks, before the LSTM step that follows (a
        server hands the text over there, so its event loop sends it while the step's torch calls run without
        the GIL)."""
        self.net, self.tokenizer, self.prefill_chunk = net.eval(), tokenizer, prefill_chunk
        self.on_tokens = on_tokens
        self.stepper = StepModel(net, quantize)
        self.device = net.embed.weight.device
        self.vocab = net.cfg.vocab_size
        self.reading: deque[Row] = deque()  # rows whose prompt is still being read, first come first served
        self.rows: list[Row] = []  # rows decoding, in the order of ``state`` and ``logits``
        self.state: list | None = None  # per layer (h, c), each (N, H)
        self.logits: torch.Tensor | None = None  # (N, V): what each row samples its next token from

    def __len__(self) -> int:
        """Rows live: reading their prompt or decoding."""
        return len(self.reading) + len(self.rows)

    def add(self, prompt: str, cfg: GenerateConfig, n: int, sink: Sink, first: int = 0) -> int:
        """``n`` samples of ``prompt`` as choices ``first`` .. ``first + n - 1`` of ``sink``; returns the number
        of prompt tokens. They start at the next ``step``."""
        ids = prompt_ids(self.tokenizer, prompt)
        for j in range(n):
            seen = None
            if cfg.repetition_penalty != 1.0:
                seen = torch.zeros(self.vocab, dtype=torch.bool)
                seen[ids] = True
            key = row_key(row_seed(cfg.seed, j))
            self.reading.append(Row(sink, first + j, cfg, key, StopText(self.tokenizer, cfg.stop), ids, seen=seen))
        return len(ids)

    def step(self) -> int:
        """Read up to ``prefill_chunk`` tokens of the waiting prompts (first come first served), then one token for
        every decoding row; rows whose request was cancelled, that hit a stop string or ``max_tokens`` leave.
        Returns how many rows it decoded a token for."""
        with torch.inference_mode():
            self._drop(lambda r: r.sink.cancelled(), "cancelled")
            if self.reading:
                self.reading = deque(r for r in self.reading if not (r.sink.cancelled() and self._end(r, "cancelled")))
            budget = self.prefill_chunk  # prompt tokens read before this step: short prompts all join at once
            while self.reading and budget > 0:
                budget -= self._prefill(self.reading[0], budget)
            rows = len(self.rows)
            if rows:
                self._decode()
            return rows

    def fail(self) -> list[Sink]:
        """Drop every row (after an error in ``step``); returns their sinks."""
        sinks = {id(r.sink): r.sink for r in [*self.rows, *self.reading]}
        self.rows, self.reading, self.state, self.logits = [], deque(), None, None
        return list(sinks.values())

    def _prefill(self, row: Row, budget: int) -> int:
        """Read the next ``budget`` tokens at most of ``row``'s prompt; returns how many it read."""
        if row.read == 0 and len(row.ids) <= budget:  # the whole prompt now (short ones as single steps)
            chunk = row.ids
            logits, state = self.stepper.read(self.net, chunk)  # (1, V), per layer (1, H)
            row.read = len(chunk)
        else:
            chunk = row.ids[row.read : row.read + budget]
            logits, row.state = self.net.prefill(torch.tensor([chunk], device=self.device), state=row.state)
            row.read += len(chunk)
            if row.read < len(row.ids):
                return len(chunk)
            state = self.stepper.state_from(row.state)  # per layer (1, H)
            row.state = None
        self.reading.popleft()
        if row.cfg.max_tokens == 0:
            self._end(row, "length")
            return len(chunk)
        logits = logits.float().cpu()
        if self.rows:
            live, live_logits = self._live()
            self.state = [(torch.cat([h, h1]), torch.cat([c, c1])) for (h, c), (h1, c1) in zip(live, state)]
            self.logits = torch.cat([live_logits, logits])
        else:
            self.state, self.logits = state, logits
        self.rows.append(row)
        return len(chunk)

    def _decode(self) -> None:
        toks = self._sample()  # (N,)
        for row, tok in zip(self.rows, toks.tolist()):
            row.tokens += 1
            if row.seen is not None:
                row.seen[tok] = True
            piece = row.text.push(tok)
            if row.text.done:
                row.finish = "stop"
            elif row.tokens >= row.cfg.max_tokens:
                row.finish = "length"
            else:
                row.finish = None
            if piece:
                row.sink.piece(row.choice, piece)
        keep = self._drop(lambda r: r.finish is not None, None)
        if self.on_tokens is not None:
            self.on_tokens()
        if self.rows:
            toks = toks if keep is None else toks[keep]
            logits, self.state = self.stepper.step(toks.to(self.device), self.state)  # (N, V)
            self.logits = logits.float().cpu()

    def _sample(self) -> torch.Tensor:
        """Each row's next token (N,), from its own settings and generator: the rows that share their settings
        are filtered together, then one softmax and one categorical draw cover every row that samples."""
        _, logits = self._live()
        groups: dict[tuple, list[int]] = {}
        for i, row in enumerate(self.rows):
            groups.setdefault(sampling_key(row.cfg), []).append(i)
        if len(groups) == 1:  # the common case: every row samples alike, no gathering
            cfg = self.rows[0].cfg
            logits = filter_logits(logits, cfg, self._seen(self.rows))  # (N, V)
            return logits.argmax(-1) if cfg.greedy else self._draw(self.rows, logits)
        toks = torch.empty(len(self.rows), dtype=torch.long)
        filtered = torch.empty_like(logits, dtype=torch.float)  # (N, V): the sampling rows' filtered logits
        sampling: list[int] = []
        for idx in groups.values():
            rows, at = [self.rows[i] for i in idx], torch.tensor(idx)
            group = filter_logits(logits[at], rows[0].cfg, self._seen(rows))  # (G, V)
            if rows[0].cfg.greedy:
                toks[at] = group.argmax(-1)
            else:
                filtered[at] = group
                sampling += idx
        if sampling:
            sampling.sort()
            at = torch.tensor(sampling)
            toks[at] = self._draw([self.rows[i] for i in sampling], filtered[at])
        return toks

    def _seen(self, rows: list[Row]) -> torch.Tensor | None:
        """(G, V) tokens seen by ``rows``, which share their settings: every row has ``seen`` when their
        repetition penalty is on (``add`` made it)."""
        if rows[0].cfg.repetition_penalty == 1.0:
            return None
        return torch.stack([r.seen for r in rows if r.seen is not None])

    def _draw(self, rows: list[Row], logits: torch.Tensor) -> torch.Tensor:
        """Tokens (G,) of ``rows`` from their filtered logits (G, V), each with its own numbered draw, as
        ``sample_next`` makes them: the same text as ``generate``."""
        u = uniforms([r.key for r in rows], [r.draws for r in rows])
        for r in rows:
            r.draws += 1
        return categorical(torch.softmax(logits, dim=-1), u)

    def _drop(self, gone, finish: str | None) -> torch.Tensor | None:
        """Remove the decoding rows for which ``gone(row)`` (ending each with ``finish``, or its own); returns
        the indices of the rows kept, in the order they had (None: all of them)."""
        out = [i for i, r in enumerate(self.rows) if gone(r)]
        if not out:
            return None
        for i in out:
            end = finish or self.rows[i].finish
            assert end is not None  # a row that ends by itself has said why
            self._end(self.rows[i], end)
        keep = torch.tensor([i for i in range(len(self.rows)) if i not in set(out)], dtype=torch.long)
        self.rows = [self.rows[i] for i in keep.tolist()]
        if self.rows:
            state, logits = self._live()
            self.state = [(h[keep], c[keep]) for h, c in state]
            self.logits = logits[keep]
        else:
            self.state = self.logits = None
        return keep

    def _live(self) -> tuple[list, torch.Tensor]:
        """``state`` and ``logits``, set while rows decode."""
        assert self.state is not None and self.logits is not None
        return self.state, self.logits

    def _end(self, row: Row, finish: str) -> bool:
        if finish == "length":  # what was held back as a possible stop string's start is text after all
            tail = row.text.finish()
            if tail:
                row.sink.piece(row.choice, tail)
        row.sink.done(row.choice, finish, row.tokens)
        return True

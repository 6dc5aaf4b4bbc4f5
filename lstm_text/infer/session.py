"""An interactive session with a language model: one running text whose LSTM state carries over from turn to
turn, so a turn costs its own tokens only (``lstm-text generate --interactive``), and its slash commands."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import torch

from ..config import GenerateConfig
from ..errors import LstmTextError
from .generate import Draws, StopText, prompt_ids, sample_next
from .steer import WINDOW, Steer, window
from .step import StepModel

HELP = """commands:
  /reset               forget the conversation: the next turn starts from an empty state
  /temp X              sampling temperature (> 0)
  /sentiment LABEL     steer the replies towards a classifier label (positive, negative), or off
  /help                this list
  /quit                end the session (or Ctrl-D)
anything else is text: the model reads it and continues it"""


class Session:
    """The model's state after everything said so far; ``turn`` reads a text and streams its continuation.

    Every token, read or generated, goes through one LSTM step (``StepModel``), so the state always holds
    the whole conversation, as the same text read at once would leave it.
    """

    def __init__(self, net, tokenizer, cfg: GenerateConfig, quantize: str = "", make_steer: Callable | None = None):
        """
        Args:
            net: the ``LSTMModel``.
            cfg: sampling options; ``cfg.max_tokens`` per turn.
            make_steer: label -> ``infer.steer.Steer`` for ``/sentiment`` (None: no steering available).
        """
        self.net, self.tokenizer, self.cfg, self.make_steer = net, tokenizer, cfg, make_steer
        self.stepper = StepModel(net, quantize)
        self.device = net.embed.weight.device
        self.draws = Draws(cfg.seed)
        self.steer: Steer | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the conversation (the sampling options and steering stay)."""
        self.state: list | None = None  # per layer (h, c), each (1, H)
        self.logits: torch.Tensor | None = None  # (1, V): what the next token is sampled from
        self.recent = ""  # the conversation's last characters: what a steering classifier starts from
        self.seen: torch.Tensor | None = None
        if self.cfg.repetition_penalty != 1.0:
            self.seen = torch.zeros(1, self.net.cfg.vocab_size, dtype=torch.bool)
        if self.steer is not None:
            self.steer.reset("")

    def read(self, text: str) -> None:
        """Step the model through ``text`` (a conversation's first text may be empty: it starts after a line
        break, as ``generate`` does)."""
        ids = self.tokenizer.encode(text) if self.state is not None else prompt_ids(self.tokenizer, text)
        if not ids:
            return
        if self.seen is not None:
            self.seen[0, ids] = True
        with torch.inference_mode():
            logits, self.state = self.stepper.run(torch.tensor([ids], device=self.device), self.state)  # (1, T, V)
        self.logits = logits[:, -1].cpu()  # (1, V)
        self.recent = window(self.recent + text, 4 * WINDOW)
        if self.steer is not None:
            self.steer.push_text(text)

    def turn(self, text: str) -> Iterator[str]:
        """Read ``text``, then yield the pieces of its continuation (up to ``cfg.max_tokens`` tokens or a stop
        string); the continuation becomes part of the conversation."""
        self.read(text)
        assert self.logits is not None  # ``read`` has read at least the line break a conversation starts at
        out = StopText(self.tokenizer, self.cfg.stop)
        pick = self.steer.pick if self.steer is not None else sample_next
        with torch.inference_mode():
            for _ in range(self.cfg.max_tokens):
                tok = pick(self.logits, self.cfg, self.draws, self.seen)  # (1,)
                if self.seen is not None:
                    self.seen[0, tok] = True
                logits, self.state = self.stepper.step(tok.to(self.device), self.state)
                self.logits = logits.cpu()
                piece = out.push(int(tok[0]))
                self.recent = window(self.recent + piece, 4 * WINDOW)
                if piece:
                    yield piece
                if out.done:
                    return
        tail = out.finish()
        if tail:
            yield tail

    def command(self, line: str) -> str | None:
        """Carry out a slash command; returns what to tell the user, or None for /quit. A bad command or value
        raises ``LstmTextError`` and changes nothing."""
        name, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        if name == "/quit":
            return None
        if name == "/help":
            return HELP
        if name == "/reset":
            self.reset()
            return "the conversation is forgotten"
        if name == "/temp":
            try:
                t = float(arg)
            except ValueError:
                raise LstmTextError(f"/temp needs a number, got {arg!r}") from None
            self.cfg = dataclasses.replace(self.cfg, temperature=t)  # validates: > 0
            return f"temperature {t:g}"
        if name == "/sentiment":
            if arg in ("off", "none", ""):
                self.steer = None
                return "steering off"
            if self.make_steer is None:
                raise LstmTextError("steering is not available in this session")
            steer = self.make_steer(arg)
            steer.reset(self.recent)
            self.steer = steer
            return f"steering towards {arg}"
        raise LstmTextError(f"unknown command {name}; /help lists the commands")

"""Steering generation towards a classifier's label: FUDGE (Yang & Klein 2021, "FUDGE: Controlled Text
Generation With Future Discriminators").

At each step the language model's ``candidates`` most likely next tokens (after temperature, top-k/p and the
other filters) are each appended to the text so far, the classifier scores the K continued texts in one
batched call, and the next token is sampled from

    log p_LM(token | text) + strength * log p_clf(label | text + token)

restricted to those K (FUDGE's top-k rescoring; strength 1 is FUDGE's Bayes factorisation, larger values
steer harder). The language model still takes one LSTM step per token; the classifier's cost per token is
bounded because it reads only the last ``window`` characters of the text, cut to whole words (a classifier
such as the built-in ``sentiment`` is bidirectional, so it has no state to carry and must re-read what it
sees; a bounded window makes that a constant). NumPy and torch; the classifier runs on its NumPy path.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import LstmTextError
from ..tokenizer import UNK
from .classifier import encode_lines
from .generate import categorical, filter_logits

CANDIDATES = 16  # LM tokens rescored per step: a char model's next character is nearly always among them
WINDOW = 160  # characters of recent text the classifier reads per candidate (about 30 words)
STRENGTH = 4.0  # default weight of the classifier's log-probability (benchmarks/README.md: the measured trade-off)
MAX_UNKNOWN = 0.5  # a classifier that reads more than this share of the model's text as unknown does not fit


def check_strength(strength: float) -> None:
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and 0 <= strength <= 100):
        raise LstmTextError(f"{{strength}} must be a number from 0 to 100, got {strength}", "strength")


def check_label(classifier, label: str, name: str) -> int:
    """The label's column in the classifier's output, or one clear error."""
    if not classifier.labels:
        raise LstmTextError(
            f"{{classifier}} {name} has no classification head: give a sentiment classifier", "classifier"
        )
    if label not in classifier.labels:
        raise LstmTextError(
            f"{{classifier}} {name} has no label {label!r} (its labels: {', '.join(classifier.labels)})", "sentiment"
        )
    return classifier.labels.index(label)


def check_fit(classifier, sample: str, name: str) -> None:
    """One clear error when the classifier's tokenizer reads ``sample`` (the model's own text) as mostly unknown."""
    ids = classifier.tokenizer.encode(sample)
    if not ids:
        return
    unknown = sum(i == UNK for i in ids) / len(ids)
    if unknown > MAX_UNKNOWN:
        raise LstmTextError(
            f"{{classifier}} {name} does not fit this model: its tokenizer reads {unknown:.0%} of a sample of the "
            "model's text as unknown tokens; give a classifier trained on text like this model's",
            "classifier",
        )


def window(text: str, chars: int = WINDOW) -> str:
    """The last ``chars`` characters of ``text``, starting at a word boundary when one is in reach."""
    if len(text) <= chars:
        return text
    tail = text[-chars:]
    cut = tail.find(" ")
    return tail[cut + 1 :] if 0 <= cut < chars // 2 else tail


class Steer:
    """Picks each next token for N samples by FUDGE; keeps each sample's recent text for the classifier."""

    def __init__(
        self,
        tokenizer,
        classifier,
        label: str,
        strength: float = STRENGTH,
        *,
        text: str = "",
        candidates: int = CANDIDATES,
        chars: int = WINDOW,
        name: str = "",
    ):
        """
        Args:
            tokenizer: the language model's tokenizer (its pieces are what candidates append).
            classifier: an ``api.Model`` with a classification head.
            label: the class to steer towards.
            strength: the classifier's weight S in log p_LM + S log p_clf.
            text: the text before the first generated token (the prompt).
        """
        check_strength(strength)
        if candidates < 1:
            raise LstmTextError("steering needs at least one candidate per step")
        self.col = check_label(classifier, label, name or "the classifier")
        self.tok, self.clf, self.ctok = tokenizer, classifier.classifier, classifier.tokenizer
        self.label, self.strength, self.k, self.chars = label, float(strength), candidates, chars
        self.start = text
        self.texts: list[str] | None = None  # per sample, once the batch size is known
        self.pieces: dict[int, str] = {}

    def piece(self, i: int) -> str:
        p = self.pieces.get(i)
        if p is None:
            p = self.pieces[i] = self.tok.piece_bytes(i).decode("utf-8", "ignore")
        return p

    def push_text(self, text: str) -> None:
        """Add ``text`` (a user's turn) to every sample's recent text."""
        self.start += text
        if self.texts is not None:
            self.texts = [window(t + text, 4 * self.chars) for t in self.texts]

    def reset(self, text: str = "") -> None:
        self.start, self.texts = text, None

    def scores(self, cand: torch.Tensor, live: torch.Tensor) -> np.ndarray:
        """log p_clf(label | recent text + candidate) for candidate ids (N, K) -> (N, K), in one classifier call
        over the ``live`` (N, K) candidates (the others get -inf)."""
        assert self.texts is not None  # ``pick`` sets them first
        N, K = cand.shape
        rows = live.nonzero().tolist()
        texts = [window(self.texts[n] + self.piece(int(cand[n, j])), self.chars) for n, j in rows]
        out = np.full((N, K), -np.inf)
        p = self.clf.probs(encode_lines(self.ctok, texts))[:, self.col]  # (live,)
        out[tuple(np.array(rows).T)] = np.log(np.maximum(p, 1e-12))
        return out

    def pick(self, logits: torch.Tensor, cfg, draws, seen: torch.Tensor | None = None) -> torch.Tensor:
        """One token id per row of LM logits (N, V) -> (N,), reweighted by the classifier (``sample_next``'s
        drop-in)."""
        N = logits.size(0)
        if self.texts is None:
            self.texts = [self.start] * N
        texts = self.texts
        logp = torch.log_softmax(filter_logits(logits, cfg, seen), dim=-1)  # (N, V) after every filter
        top, cand = torch.topk(logp, min(self.k, logp.size(-1)), dim=-1)  # (N, K), the first always finite
        live = torch.isfinite(top)  # tokens the filters dropped stay out
        score = top.double()
        if self.strength:
            score = score + self.strength * torch.from_numpy(self.scores(cand, live))
        if cfg.greedy:
            choice = score.argmax(-1)
        else:
            choice = categorical(torch.softmax(score, -1), draws.next())  # draws: ``generate.Draws``
        tok = cand.gather(1, choice[:, None])[:, 0]  # (N,)
        for n, t in enumerate(tok.tolist()):
            texts[n] = window(texts[n] + self.piece(t), 4 * self.chars)
        return tok

"""The LSTM encoder and its two heads: next-token prediction (LM) and sequence classification.

One class, one checkpoint format: a model has an LM head, a classification head, or both.
An LSTM cell keeps a cell state c behind input, forget and output gates (Hochreiter & Schmidhuber 1997):
the additive update of c is what lets gradients survive long spans where a plain RNN's vanish.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .infer.packed import POOLING
from .tokenizer import PAD

State = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c), each (dirs, B, H)


class LockedDropout(nn.Module):
    """One dropout mask per sequence, shared over time (Gal & Ghahramani 2016; AWD-LSTM)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


class LSTMModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        dirs = 2 if cfg.bidirectional else 1
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed, padding_idx=PAD)
        self.embed_rows: torch.Tensor | None = None  # see train_only_rows
        self.lstms = nn.ModuleList(
            nn.LSTM(
                cfg.embed if i == 0 else cfg.hidden * dirs,
                cfg.hidden,
                batch_first=True,
                bidirectional=cfg.bidirectional,
            )
            for i in range(cfg.layers)
        )
        self.drop = LockedDropout(cfg.dropout)
        self.proj = None
        if cfg.lm_head:
            tie = cfg.tie_weights
            # Tying needs the head's input to be embedding-sized: project H -> E when they differ.
            self.proj = nn.Linear(cfg.hidden, cfg.embed) if tie and cfg.hidden != cfg.embed else None
            self.lm_head = nn.Linear(cfg.embed if tie else cfg.hidden, cfg.vocab_size)
            if tie:
                self.lm_head.weight = self.embed.weight  # Press & Wolf 2017; Inan et al. 2017
        if cfg.labels:
            # [last state, max pool, mean pool] of the top layer, in ``POOLING``'s order (ULMFiT's concat pooling)
            width = len(POOLING) * cfg.hidden * dirs
            self.cls_head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, len(cfg.labels)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embed.weight[PAD].zero_()
            H = self.cfg.hidden  # every layer's hidden size
            for lstm in self.lstms:
                for name, p in lstm.named_parameters():
                    if name.startswith("bias_ih"):
                        p.zero_()
                        p[H : 2 * H].fill_(1.0)  # forget gate bias 1: remember by default (Jozefowicz 2015)
                    elif name.startswith("bias_hh"):
                        p.zero_()
            if self.cfg.lm_head:
                self.lm_head.bias.zero_()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, E)
        x = F.embedding(idx, self.embed.weight, PAD)
        rows = self.embed_rows
        if rows is not None:  # the trained head of an otherwise fixed embedding (``train_only_rows``)
            k = rows.size(0)
            x = torch.where((idx < k)[..., None], F.embedding(idx.clamp(max=k - 1), rows, PAD), x)
        p = self.cfg.embed_dropout
        if self.training and p > 0:
            # drop whole rows: a token vanishes everywhere in the batch (Merity et al. 2017)
            keep = x.new_empty(self.embed.weight.size(0), 1).bernoulli_(1 - p) / (1 - p)  # (V, 1)
            x = x * keep[idx]
        return x

    def train_only_rows(self, k: int) -> torch.Tensor:
        """Fix the embedding but its first ``k`` rows, and return those as one trainable tensor.

        With pretrained word vectors below row ``k`` kept as they are, a step's embedding gradient and AdamW
        update cover (k, E) instead of (V, E): about 8x faster steps with 60,000 GloVe rows. The tensor shares
        the embedding's storage, so saved weights include its updates, and it is not registered as a
        parameter, so state dicts and model files name only the embedding. Call after moving the model.
        """
        w = self.embed.weight
        w.requires_grad_(False)
        rows = nn.Parameter(w.detach()[:k])  # a view: updates land in the embedding itself
        self.__dict__["embed_rows"] = rows  # bypasses Module.__setattr__, which would register it
        return rows

    def encode(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Top-layer outputs (B, T, H*dirs) and the new per-layer state."""
        x = self.drop(self._embed(idx))  # (B, T, E)
        new_state: State = []
        for i, lstm in enumerate(self.lstms):
            x, (h, c) = lstm(x, None if state is None else state[i])  # (B, T, H*dirs)
            new_state.append((h, c))
            x = self.drop(x)
        return x, new_state

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        state: State | None = None,
        mask: torch.Tensor | None = None,
    ):
        """Next-token logits (B, T, V), the mean loss over targets (or None), and the carried state."""
        x, state = self.encode(idx, state)
        if self.proj is not None:
            x = self.proj(x)  # (B, T, E)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
            loss = loss.mean() if mask is None else (loss * mask.reshape(-1)).sum() / mask.sum().clamp(min=1)
        return logits, loss, state

    def prefill(self, idx: torch.Tensor, chunk: int = 4096, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Read a prompt (B, P) in chunks with the state carried (from ``state``, or zeros); logits (B, V) of its
        last position only.

        Memory stays bounded by the chunk, whatever the prompt's length."""
        for s in range(0, idx.size(1), chunk):
            x, state = self.encode(idx[:, s : s + chunk], state)  # (B, t, H)
        assert state is not None  # a prompt has at least one token
        x = x[:, -1]  # (B, H)
        if self.proj is not None:
            x = self.proj(x)
        return self.lm_head(x), state

    def classify(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class logits (B, C) for right-padded lines ``idx`` (B, T) of the given lengths (B,)."""
        x = self.drop(self._embed(idx))
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        for lstm in self.lstms:
            packed, _ = lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(packed, batch_first=True, total_length=idx.size(1))
        out = self.drop(out)  # (B, T, D)
        B, T, D = out.shape
        valid = torch.arange(T, device=idx.device)[None, :] < lengths.clamp(min=1)[:, None]  # (B, T)
        last_i = (lengths.clamp(min=1) - 1).view(B, 1, 1).expand(B, 1, D)
        if self.cfg.bidirectional:
            H = D // 2  # forward direction ends at the last token, backward at the first
            last = torch.cat([out.gather(1, last_i)[:, 0, :H], out[:, 0, H:]], dim=-1)
        else:
            last = out.gather(1, last_i)[:, 0]  # (B, D)
        mx = out.masked_fill(~valid[..., None], float("-inf")).amax(1)  # (B, D)
        mean = (out * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)  # (B, D)
        pooled = {"last": last, "max": mx, "mean": mean}
        return self.cls_head(torch.cat([pooled[k] for k in POOLING], dim=-1))  # (B, C)

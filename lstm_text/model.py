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
            # [last state, max pool, mean pool] of the top layer (ULMFiT's concat pooling, Howard & Ruder 2018)
            width = 3 * cfg.hidden * dirs
            self.cls_head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, len(cfg.labels)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embed.weight[PAD].zero_()
            for lstm in self.lstms:
                H = lstm.hidden_size
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
        w = self.embed.weight
        p = self.cfg.embed_dropout
        if self.training and p > 0:
            # drop whole rows: a token vanishes everywhere in the batch (Merity et al. 2017)
            keep = w.new_empty(w.size(0), 1).bernoulli_(1 - p) / (1 - p)
            w = w * keep
        return F.embedding(idx, w, PAD)

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

    def prefill(self, idx: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, State]:
        """Read a prompt (B, P) in chunks with the state carried; logits (B, V) of its last position only.

        Memory stays bounded by the chunk, whatever the prompt's length."""
        state = None
        for s in range(0, idx.size(1), chunk):
            x, state = self.encode(idx[:, s : s + chunk], state)  # (B, t, H)
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
        return self.cls_head(torch.cat([last, mx, mean], dim=-1))  # (B, C)


def int8_linear(w: torch.Tensor, b: torch.Tensor | None):
    """x -> x @ w.T + b with w in int8 (per-output-row scales) and x quantized on the fly (fbgemm/onednn).

    Dynamic quantization as ``torch.ao.quantization.quantize_dynamic`` does it for ``nn.Linear``; the int8
    weights read 4x less memory, which is what a batch-1 step is bound by.
    """
    import warnings

    w = w.detach().float().contiguous()
    scales = (w.abs().amax(1) / 127).clamp(min=1e-12).double()
    with warnings.catch_warnings():  # quantized tensors are "deprecated" in favour of torchao, which we do not need
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(w, scales, torch.zeros(w.size(0), dtype=torch.long), 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(q, None if b is None else b.detach().float().contiguous())
    return lambda x: torch.ops.quantized.linear_dynamic(x, packed, False)


class StepModel:
    """Inference-only single-token steps with fused, pre-transposed weights (for generation).

    Numerically the same function as ``LSTMModel.forward`` one token at a time, but with the per-call
    overhead of ``nn.LSTM`` removed: the first layer's input projection of an embedding is a row lookup in a
    precomputed (V, 4H) table, each layer is one or two ``addmm`` plus five elementwise ops (gates reordered
    to [i, f, o | g] so one sigmoid and one tanh cover them), and nothing is re-flattened per step.
    ``quantize="int8"``: the matrix products run with int8 weights (dynamic quantization, CPU only).
    """

    def __init__(self, model: LSTMModel, quantize: str = ""):
        cfg = model.cfg
        if cfg.bidirectional or not cfg.lm_head:
            raise ValueError("StepModel needs a unidirectional language model")
        if quantize not in ("", "int8"):
            raise ValueError(f"unknown quantization {quantize!r}")
        self.H, self.int8 = cfg.hidden, quantize == "int8"
        with torch.no_grad():

            def reorder(w):  # PyTorch's gate order i, f, g, o -> i, f, o, g
                i, f, g, o = w.chunk(4, 0)
                return torch.cat([i, f, o, g], 0)

            self.layers = []
            for k, lstm in enumerate(model.lstms):
                w_ih, w_hh = reorder(lstm.weight_ih_l0), reorder(lstm.weight_hh_l0)
                b = reorder(lstm.bias_ih_l0 + lstm.bias_hh_l0)
                if k == 0:
                    table = torch.addmm(b, model.embed.weight, w_ih.t())  # (V, 4H): embedding @ W_ih + b
                    hh = int8_linear(w_hh, None) if self.int8 else w_hh.t().contiguous()
                    self.layers.append((table, None, hh))
                elif self.int8:
                    self.layers.append((None, int8_linear(w_ih, b), int8_linear(w_hh, None)))
                else:
                    self.layers.append((b, w_ih.t().contiguous(), w_hh.t().contiguous()))
            w, b = model.lm_head.weight, model.lm_head.bias  # (V, E), (V,)
            if model.proj is not None:  # no nonlinearity between projection and head: fold them, (V, H)
                w, b = w @ model.proj.weight, torch.addmv(b, w, model.proj.bias)
            self.head = int8_linear(w, b) if self.int8 else (b.clone(), w.t().contiguous())

    def state_from(self, state: State) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(h[0].contiguous(), c[0].contiguous()) for h, c in state]  # (1, N, H) -> (N, H)

    def step(self, tok: torch.Tensor, state) -> tuple[torch.Tensor, list]:
        """Logits (N, V) for tokens (N,) and the new state, a list of (h, c) each (N, H)."""
        H, new = self.H, []
        x = None
        for k, ((b, w_ih, w_hh), (h, c)) in enumerate(zip(self.layers, state)):
            if self.int8:
                gates = w_hh(h).add_(b[tok]) if k == 0 else w_ih(x).add_(w_hh(h))
            elif k == 0:
                gates = torch.addmm(b[tok], h, w_hh)  # (N, 4H): table row + h @ W_hh
            else:
                gates = torch.addmm(b, x, w_ih).addmm_(h, w_hh)
            ifo = torch.sigmoid(gates[:, : 3 * H])
            g = torch.tanh(gates[:, 3 * H :])
            c = torch.addcmul(ifo[:, H : 2 * H] * c, ifo[:, :H], g)
            x = ifo[:, 2 * H :] * torch.tanh(c)  # h: (N, H)
            new.append((x, c))
        logits = self.head(x) if self.int8 else torch.addmm(self.head[0], x, self.head[1])
        return logits, new

    def run(self, idx: torch.Tensor, state=None) -> tuple[torch.Tensor, list]:
        """Logits (N, T, V) for tokens (N, T) read one step at a time; ``state`` None starts from zeros."""
        if state is None:
            z = torch.zeros(idx.size(0), self.H, device=idx.device)
            state = [(z, z)] * len(self.layers)
        out = []
        for t in range(idx.size(1)):
            logits, state = self.step(idx[:, t], state)
            out.append(logits)
        return torch.stack(out, 1), state

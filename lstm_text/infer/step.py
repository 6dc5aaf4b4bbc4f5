"""Single-token LSTM steps for generation and int8 bpc evaluation, on the packed weights (``packed``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .packed import pack_lm_head, pack_lstm, row_scales

SHORT_PROMPT = 12  # tokens: a prompt this short reads faster as single steps than through nn.LSTM's sequence path
# (1 x 512, one thread: 6 tokens 0.8 ms against 2.6 ms, 16 tokens 3.3 against 4.0, 64 tokens 10.8 against 7.5)


Linear = Callable[[torch.Tensor], torch.Tensor]  # x -> x @ w.T + b


def int8_linear(w: np.ndarray, b: np.ndarray | None) -> Linear:
    """x -> x @ w.T + b with ``w`` (out, in) in int8 (per-row scales, ``packed.row_scales``) and x, an LSTM's h
    (every value in [-1, 1]), quantized on the fly (fbgemm/onednn).

    Dynamic quantization as ``torch.ao.quantization.quantize_dynamic`` does it for ``nn.Linear``; the int8
    weights read 4x less memory, which is what a batch-1 step is bound by. The kernel quantizes x with one
    range for the whole batch, so one row's result would hang on the other rows' values; each row gets two
    more inputs, 1 and -1, with zero weights, which fixes that range at [-1, 1]: a row's logits are the same
    alone and batched with any others (a request's text does not depend on what else the server runs).
    """
    import warnings

    w = np.concatenate([w, np.zeros((w.shape[0], 2), w.dtype)], 1)  # (out, in + 2)
    wt = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
    scales = torch.from_numpy(row_scales(w)[:, 0]).double()
    with warnings.catch_warnings():  # quantized tensors are "deprecated" in favour of torchao, which we do not need
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(wt, scales, torch.zeros(wt.size(0), dtype=torch.long), 0, torch.qint8)
        bt = None if b is None else torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))
        packed = torch.ops.quantized.linear_prepack(q, bt)
    bounds = torch.tensor([[1.0, -1.0]])

    def linear(x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(torch.cat([x, bounds.expand(x.size(0), 2)], 1), packed, False)

    return linear


class StepModel:
    """Inference-only single-token steps with fused, pre-transposed weights (for generation).

    Numerically the same function as ``LSTMModel.forward`` one token at a time, but with the per-call
    overhead of ``nn.LSTM`` removed: the first layer's input projection of an embedding is a row lookup in a
    precomputed (V, 4H) table, each layer is one or two ``addmm`` plus five elementwise ops (gates in the
    packed order [i, f, o | g] so one sigmoid and one tanh cover them), and nothing is re-flattened per step.
    ``quantize="int8"``: the matrix products run with int8 weights (dynamic quantization, CPU only).
    """

    def __init__(self, model, quantize: str = ""):
        cfg = model.cfg
        if cfg.bidirectional or not cfg.lm_head:
            raise ValueError("StepModel needs a unidirectional language model")
        if quantize not in ("", "int8"):
            raise ValueError(f"unknown quantization {quantize!r}")
        self.H, self.int8 = cfg.hidden, quantize == "int8"
        self.device = device = model.embed.weight.device
        weights = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        lstm = pack_lstm(cfg, weights)
        table = lstm[0].table
        assert table is not None  # pack_lstm gives the first layer a table unless asked not to
        self.table = t(table[0])  # (V, 4H): embedding @ W_ih + b, the first layer's input projection as a lookup
        self.n_layers = len(lstm)
        w, b = pack_lm_head(cfg, weights)  # (V, H), (V,)
        # What remains per layer: h @ W_hh, and above the first layer x @ W_ih + b.
        ih = [layer.projection() for layer in lstm[1:]]  # (D, in, 4H), (D, 4H)
        if self.int8:
            self.q_hh: list[Linear] = [int8_linear(layer.w_hh[0].T, None) for layer in lstm]
            self.q_ih: list[Linear] = [int8_linear(w_in[0].T, bias[0]) for w_in, bias in ih]
            self.q_head = int8_linear(w, b)
        else:
            self.w_hh = [t(layer.w_hh[0]) for layer in lstm]  # (H, 4H)
            self.ih = [(t(bias[0]), t(w_in[0])) for w_in, bias in ih]  # (4H,), (in, 4H)
            self.head = (t(b), t(w.T))  # (V,), (H, V)

    def state_from(self, state) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(h[0].contiguous(), c[0].contiguous()) for h, c in state]  # (1, N, H) -> (N, H)

    def step(self, tok: torch.Tensor, state) -> tuple[torch.Tensor, list]:
        """Logits (N, V) for tokens (N,) and the new state, a list of (h, c) each (N, H)."""
        H, new = self.H, []
        x = self.table[tok]  # (N, 4H): the first layer's input projection; then each layer's output h (N, H)
        for k, (h, c) in enumerate(state):
            if self.int8:
                gates = self.q_hh[k](h).add_(x) if k == 0 else self.q_ih[k - 1](x).add_(self.q_hh[k](h))
            elif k == 0:
                gates = torch.addmm(x, h, self.w_hh[0])  # (N, 4H): table row + h @ W_hh
            else:
                b, w_ih = self.ih[k - 1]
                gates = torch.addmm(b, x, w_ih).addmm_(h, self.w_hh[k])
            ifo = torch.sigmoid(gates[:, : 3 * H])
            g = torch.tanh(gates[:, 3 * H :])
            c = torch.addcmul(ifo[:, H : 2 * H] * c, ifo[:, :H], g)
            x = ifo[:, 2 * H :] * torch.tanh(c)  # h: (N, H)
            new.append((x, c))
        logits = self.q_head(x) if self.int8 else torch.addmm(self.head[0], x, self.head[1])
        return logits, new

    def read(self, net, ids: list[int]) -> tuple[torch.Tensor, list]:
        """Logits (1, V) after the prompt ``ids`` and the state, per layer (h, c) each (1, H): a short prompt as
        single steps, a longer one through ``net``'s sequence path (``LSTMModel.prefill``, bounded memory)."""
        idx = torch.tensor([ids], device=self.device)  # (1, P)
        if len(ids) <= SHORT_PROMPT:
            logits, state = self.run(idx)  # (1, P, V)
            return logits[:, -1], state
        logits, state = net.prefill(idx)
        return logits, self.state_from(state)

    def run(self, idx: torch.Tensor, state=None) -> tuple[torch.Tensor, list]:
        """Logits (N, T, V) for tokens (N, T) read one step at a time; ``state`` None starts from zeros."""
        if state is None:
            z = torch.zeros(idx.size(0), self.H, device=idx.device)
            state = [(z, z)] * self.n_layers
        out = []
        for t in range(idx.size(1)):
            logits, state = self.step(idx[:, t], state)
            out.append(logits)
        return torch.stack(out, 1), state

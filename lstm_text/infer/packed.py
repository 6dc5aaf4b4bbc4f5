"""The one owner of the weights' layout: stored tensor names and shapes, and the packed form that inference
runs on (gate order, the first layer's input table, int8 rows, the folded LM head, the pooled features).

Generation (``step.StepModel``, torch), classification (``classifier.Classifier``, NumPy) and checkpoint
validation all read the weights through here. NumPy only: classification never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A classifier's features: the top layer's outputs pooled three ways, concatenated in this order (ULMFiT's
# concat pooling, Howard & Ruder 2018). ``model.LSTMModel.classify`` and ``Classifier`` both follow it.
POOLING = ("last", "max", "mean")


def directions(cfg) -> list[str]:
    """Suffixes of the stored per-direction tensors (PyTorch's nn.LSTM names)."""
    return ["_l0", "_l0_reverse"][: 2 if cfg.bidirectional else 1]


def tensor_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors a model file of this config stores (``LSTMModel``'s, tied ones once)."""
    D, H, E, V = len(directions(cfg)), cfg.hidden, cfg.embed, cfg.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (V, E)}
    for k in range(cfg.layers):
        for s in directions(cfg):
            shapes |= {
                f"lstms.{k}.weight_ih{s}": (4 * H, E if k == 0 else D * H),
                f"lstms.{k}.weight_hh{s}": (4 * H, H),
                f"lstms.{k}.bias_ih{s}": (4 * H,),
                f"lstms.{k}.bias_hh{s}": (4 * H,),
            }
    if cfg.lm_head:
        if cfg.tie_weights and H != E:
            shapes |= {"proj.weight": (E, H), "proj.bias": (E,)}
        if not cfg.tie_weights:
            shapes["lm_head.weight"] = (V, H)
        shapes["lm_head.bias"] = (V,)
    if cfg.labels:
        shapes |= {"cls_head.1.weight": (len(cfg.labels), len(POOLING) * D * H), "cls_head.1.bias": (len(cfg.labels),)}
    return shapes


def ifog(w: np.ndarray, exp_form: bool = False) -> np.ndarray:
    """PyTorch's gate rows i, f, g, o -> i, f, o, g, so one sigmoid covers the first 3H rows and one tanh the rest.

    ``exp_form``: the i, f, o rows negated and the g rows times -2, so that one ``exp`` over all four gates,
    then ``1 / (1 + e)``, gives sigmoid(x) for i, f, o and sigmoid(2x) for g, where tanh(x) = 2 sigmoid(2x) - 1.
    On CPUs ``exp`` costs half of ``tanh`` in NumPy (both are the bulk of a step), and scaling by -1 or -2 is
    exact in floating point.
    """
    i, f, g, o = np.split(w, 4)
    if exp_form:
        i, f, o, g = -i, -f, -o, -2 * g
    return np.concatenate([i, f, o, g])


def row_scales(w: np.ndarray) -> np.ndarray:
    """Symmetric int8 scales, one per row of ``w`` (..., N): max |row| / 127, shape (..., 1)."""
    return np.maximum(np.abs(w).max(-1, keepdims=True) / 127, 1e-12).astype(np.float32)


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w`` as int8 with one scale per row: (q, scales), w ~= q * scales."""
    scales = row_scales(w)
    return np.rint(w / scales).astype(np.int8), scales


@dataclass
class PackedLayer:
    """One LSTM layer, both directions stacked (D = 1 or 2), gates in [i, f, o, g] order.

    The first layer has ``table``: for each token, embedding @ W_ih + b, so its input projection is a row
    lookup; later layers have ``w_in`` and ``bias``. ``w_hh`` is pre-transposed for ``h @ w_hh``.
    """

    w_hh: np.ndarray  # (D, H, 4H)
    table: np.ndarray | None = None  # (D, V, 4H), first layer only
    w_in: np.ndarray | None = None  # (D, in, 4H), later layers
    bias: np.ndarray | None = None  # (D, 4H), later layers

    def projection(self) -> tuple[np.ndarray, np.ndarray]:
        """``(w_in, bias)`` of a layer packed without a table."""
        if self.w_in is None or self.bias is None:
            raise ValueError("this layer's input projection is its table")
        return self.w_in, self.bias


def pack_lstm(cfg, weights: dict[str, np.ndarray], exp_form: bool = False, table: bool = True) -> list[PackedLayer]:
    """The LSTM layers of stored float32 ``weights`` in the packed inference layout. ``table=False``: the first
    layer gets ``w_in`` and ``bias`` like the others (for a caller that builds table rows as tokens appear)."""
    layers = []
    for k in range(cfg.layers):
        p = f"lstms.{k}."
        sfx = directions(cfg)
        w_ih = [ifog(weights[p + "weight_ih" + s], exp_form) for s in sfx]  # (4H, in) per direction
        bias = np.stack([ifog(weights[p + "bias_ih" + s] + weights[p + "bias_hh" + s], exp_form) for s in sfx])
        w_hh = np.ascontiguousarray(np.stack([ifog(weights[p + "weight_hh" + s], exp_form).T for s in sfx]))
        if k == 0 and table:
            lookup = np.stack([weights["embed.weight"] @ wi.T + b for wi, b in zip(w_ih, bias)])  # (D, V, 4H)
            layers.append(PackedLayer(w_hh, table=lookup.astype(np.float32)))
        else:
            w_in = np.ascontiguousarray(np.stack([wi.T for wi in w_ih]))  # (D, in, 4H)
            layers.append(PackedLayer(w_hh, w_in=w_in, bias=bias))
    return layers


def pack_lm_head(cfg, weights: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The LM head as one (V, H) weight and (V,) bias: a tied head's H -> E projection folded in (no
    nonlinearity lies between them)."""
    w = weights["embed.weight"] if cfg.tie_weights else weights["lm_head.weight"]  # (V, E) or (V, H)
    b = weights["lm_head.bias"]
    if "proj.weight" in weights:
        w, b = w @ weights["proj.weight"], b + w @ weights["proj.bias"]
    return np.ascontiguousarray(w, dtype=np.float32), np.asarray(b, dtype=np.float32)


def pool_features(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Classifier features (B, 3*D*H) from top-layer outputs ``x`` (T, D, B, H), each direction in its own
    reading order, of lines with ``lengths`` (B,) >= 1: [last, max, mean] as in ``POOLING``."""
    T, D, B, H = x.shape
    valid = (np.arange(T)[:, None] < lengths[None, :])[:, None, :, None]  # (T, 1, B, 1)
    last = x[lengths - 1, :, np.arange(B)].transpose(1, 0, 2)  # (D, B, H): each direction's state after the line
    mx = np.where(valid, x, -np.inf).max(0)  # (D, B, H)
    mean = (x * valid).sum(0) / lengths[None, :, None]  # (D, B, H)
    return pooled_features(last, mx, mean)


def pooled_features(last: np.ndarray, mx: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Classifier features (B, 3*D*H) from the pooled top-layer outputs, each (D, B, H), in ``POOLING`` order
    and directions side by side."""
    pooled = {"last": last, "max": mx, "mean": mean}
    return np.concatenate([np.concatenate(list(pooled[k]), -1) for k in POOLING], -1)

"""Every metric in one place: a language model's bits per character over a whole text (state carried,
batched), and a classifier's accuracy, macro-F1, per-class figures, confusion matrix, calibration error and
temperature. The classifier metrics are NumPy only."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import overload

import numpy as np

EVAL_BATCH = 16  # contiguous rows; fixed so that training and `evaluate` give the same figure
EVAL_SEQ = 256


def rows_nll(model, rows, cancelled=None) -> tuple[float, int] | None:
    """Total negative log-likelihood (nats) of every token but the first of each row of ``rows`` (k, S), each
    row read as contiguous text with the state carried; None if ``cancelled()`` turned true on the way."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = torch.as_tensor(rows, dtype=torch.long)
    total, count = 0.0, 0
    with torch.inference_mode():
        for r in range(0, rows.size(0), 2 * EVAL_BATCH):
            part, state = rows[r : r + 2 * EVAL_BATCH].to(device), None  # (b, S)
            for s in range(0, part.size(1) - 1, EVAL_SEQ):
                if cancelled is not None and cancelled():
                    model.train(was_training)
                    return None
                x, y = part[:, s : s + EVAL_SEQ], part[:, s + 1 : s + 1 + EVAL_SEQ]
                x = x[:, : y.size(1)]
                logits, _, state = model(x, state=state)  # (b, t, V)
                nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), y, reduction="sum")
                total += float(nll)
                count += y.numel()
    model.train(was_training)
    return total, count


@overload
def lm_nll(model, ids, quantize: str = "", cancelled: None = None) -> tuple[float, int]: ...


@overload
def lm_nll(model, ids, quantize: str = "", *, cancelled: Callable[[], bool]) -> tuple[float, int] | None: ...


def lm_nll(model, ids, quantize: str = "", cancelled: Callable[[], bool] | None = None) -> tuple[float, int] | None:
    """Total negative log-likelihood (nats) of every token of ``ids`` after the first, and their count; None
    if ``cancelled()`` turned true on the way (a stop signal during validation).

    ``quantize="int8"`` reads the text through generation's int8 step path instead (what it costs in bpc).
    """
    import torch

    from .data.batches import eval_windows
    from .infer.step import StepModel

    stepper = StepModel(model, quantize) if quantize else None
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count, state = 0.0, 0, None
    with torch.inference_mode():
        for x, y, m in eval_windows(ids, EVAL_BATCH, EVAL_SEQ):
            if cancelled is not None and cancelled():
                model.train(was_training)
                return None
            x, y, m = x.to(device), y.to(device), m.to(device)
            if stepper is None:
                logits, _, state = model(x, state=state)  # (B, T, V)
            else:
                logits, state = stepper.run(x, state)
            nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")  # (B, T)
            total += float((nll * m).sum(dtype=torch.float64))
            count += int(m.sum())
    model.train(was_training)
    return total, count


def lm_metrics(model, tokenizer, text: str, quantize: str = "") -> dict:
    """bpc (NLL in bits / characters of ``text``), per-token perplexity, token and character counts."""
    ids = tokenizer.encode(text)
    if len(ids) < 2:
        from .errors import LstmTextError

        raise LstmTextError("the text is too short to evaluate: it needs at least two tokens")
    nll, n = lm_nll(model, ids, quantize)
    return {
        "bpc": nll / math.log(2) / len(text),
        "loss": nll / n,
        "perplexity": math.exp(nll / n),
        "tokens": len(ids),
        "characters": len(text),
        "chars_per_token": len(text) / len(ids),
    }


# -- classifiers -------------------------------------------------------------------------------------------
def expected_calibration_error(probs: np.ndarray, gold: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence in equal-width bins (Guo et al. 2017)."""
    conf, correct = probs.max(-1), (probs.argmax(-1) == gold)
    ece = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(ece)


def classification_metrics(probs: np.ndarray, gold: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix (rows: gold) and ECE."""
    pred = probs.argmax(-1)
    C = len(labels)
    cm = np.zeros((C, C), dtype=np.int64)
    np.add.at(cm, (gold, pred), 1)
    per = {}
    for i, lab in enumerate(labels):
        tp = int(cm[i, i])
        p = tp / max(int(cm[:, i].sum()), 1)
        r = tp / max(int(cm[i, :].sum()), 1)
        per[lab] = {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12), "support": int(cm[i].sum())}
    return {
        "accuracy": float((pred == gold).mean()),
        "macro_f1": sum(v["f1"] for v in per.values()) / C,
        "per_class": per,
        "confusion": cm.tolist(),
        "labels": labels,
        "ece": expected_calibration_error(probs, gold),
        "examples": len(gold),
    }


def nll(logits: np.ndarray, gold: np.ndarray) -> float:
    """Mean cross-entropy of class logits (N, C) against gold ids (N,)."""
    z = logits - logits.max(-1, keepdims=True)
    return float((np.log(np.exp(z).sum(-1)) - z[np.arange(len(gold)), gold]).mean())


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The temperature that minimises dev NLL (a 1-D search over log T: robust, no optimiser state)."""
    temps = np.logspace(-1, 1, 81)
    return float(temps[int(np.argmin([nll(logits / t, gold) for t in temps]))])


def evaluate_labelled(probs, labels: list[str], pairs: list[tuple[str, str]]) -> dict:
    """Classifier metrics on (text, label) pairs; pairs whose label the model lacks are counted, not scored.
    ``probs``: texts -> (N, C) probabilities over ``labels`` (``Model.read``)."""
    known = [(t, lab) for t, lab in pairs if lab in labels]
    unknown = sorted({lab for _, lab in pairs if lab not in labels})
    if not known:
        from .errors import LstmTextError

        raise LstmTextError(
            f"none of the file's labels ({', '.join(unknown[:5])}) is one of the model's ({', '.join(labels)})"
        )
    gold = np.array([labels.index(lab) for _, lab in known])
    return {
        **classification_metrics(probs([t for t, _ in known]), gold, labels),
        "unknown_labels": unknown,
        "skipped": len(pairs) - len(known),
    }

"""Measuring a language model: bits per character over a whole text, state carried, batched."""

from __future__ import annotations

import math

EVAL_BATCH = 16  # contiguous rows; fixed so that training and `evaluate` give the same figure
EVAL_SEQ = 256


def lm_nll(model, ids, quantize: str = "") -> tuple[float, int]:
    """Total negative log-likelihood (nats) of every token of ``ids`` after the first, and their count.

    ``quantize="int8"`` reads the text through generation's int8 step path instead (what it costs in bpc).
    """
    import torch

    from .data import eval_windows
    from .model import StepModel

    stepper = StepModel(model, quantize) if quantize else None
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count, state = 0.0, 0, None
    with torch.inference_mode():
        for x, y, m in eval_windows(ids, EVAL_BATCH, EVAL_SEQ):
            x, y, m = x.to(device), y.to(device), m.to(device)
            if stepper is None:
                logits, _, state = model(x, state=state)  # (B, T, V)
            else:
                logits, state = stepper.run(x, state)
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (B, T)
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

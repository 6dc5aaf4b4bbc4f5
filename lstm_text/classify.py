"""Sentiment (any labels) on the LSTM encoder: training the classification head, batched streaming
inference in input order, calibration, explanations and classifier metrics."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import MODEL_FILE, append_jsonl, save_model
from .config import ModelConfig, TrainConfig
from .errors import LstmTextError
from .tokenizer import PAD

MAX_TOKENS = 1024  # a line longer than this is classified on its first MAX_TOKENS tokens: bounded memory


def pad_batch(seqs: list[list[int]], device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, T) and lengths (B,)."""
    T = max(1, max(len(s) for s in seqs))
    x = torch.full((len(seqs), T), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s[:T], dtype=torch.long)
    return x.to(device), torch.tensor([len(s) for s in seqs], device=device)


def encode_lines(tokenizer, texts: Iterable[str]) -> list[list[int]]:
    return [tokenizer.encode(t[: MAX_TOKENS * 16])[:MAX_TOKENS] for t in texts]


# -- metrics -----------------------------------------------------------------------------------------------
def expected_calibration_error(probs: torch.Tensor, gold: torch.Tensor, bins: int = 15) -> float:
    """ECE of the top-class confidence in equal-width bins (Guo et al. 2017)."""
    conf, pred = probs.max(-1)
    correct = (pred == gold).float()
    ece = 0.0
    edges = torch.linspace(0, 1, bins + 1)
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.float().mean().item() * abs(conf[m].mean().item() - correct[m].mean().item())
    return ece


def classification_metrics(probs: torch.Tensor, gold: torch.Tensor, labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix (rows: gold) and ECE."""
    pred = probs.argmax(-1)
    C = len(labels)
    cm = torch.zeros(C, C, dtype=torch.long)
    cm.index_put_((gold, pred), torch.ones_like(gold), accumulate=True)
    per = {}
    for i, lab in enumerate(labels):
        tp = cm[i, i].item()
        p = tp / max(cm[:, i].sum().item(), 1)
        r = tp / max(cm[i, :].sum().item(), 1)
        per[lab] = {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12), "support": cm[i].sum().item()}
    return {
        "accuracy": (pred == gold).float().mean().item(),
        "macro_f1": sum(v["f1"] for v in per.values()) / C,
        "per_class": per,
        "confusion": cm.tolist(),
        "labels": labels,
        "ece": expected_calibration_error(probs, gold),
        "examples": len(gold),
    }


def fit_temperature(logits: torch.Tensor, gold: torch.Tensor) -> float:
    """The temperature that minimises dev NLL (a 1-D search over log T: robust, no optimiser state)."""
    best_t, best = 1.0, math.inf
    for t in torch.logspace(-1, 1, 81).tolist():
        nll = F.cross_entropy(logits / t, gold).item()
        if nll < best:
            best_t, best = t, nll
    return best_t


# -- inference ---------------------------------------------------------------------------------------------
@torch.inference_mode()
def class_logits(model, seqs: list[list[int]], batch_size: int = 256, fast=None) -> torch.Tensor:
    """Uncalibrated class logits (N, C) for token id lists, batched after sorting by length.

    Runs the fused inference path (``FastClassifier``); pass one in to reuse its precomputed weights.
    """
    from .model import FastClassifier

    fast = fast or FastClassifier(model)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = torch.empty(len(seqs), len(model.cfg.labels))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        x, lengths = pad_batch([seqs[i] for i in idx])
        out[idx] = fast.logits(x, lengths).float().cpu()
    return out


def probabilities(model, seqs: list[list[int]], batch_size: int = 256, fast=None) -> torch.Tensor:
    return torch.softmax(class_logits(model, seqs, batch_size, fast) / model.cfg.temperature, -1)


def result(labels: list[str], p: torch.Tensor | None, threshold: float = 0.0, abstain: str = "neutral") -> dict:
    """One line's result; ``p`` None (an empty line) gives label None."""
    if p is None:
        return {"label": None, "score": None, "probs": {}}
    score, i = p.max(-1)
    label = labels[int(i)]
    if threshold and float(score) < threshold:
        label = abstain
    return {"label": label, "score": float(score), "probs": {lab: float(v) for lab, v in zip(labels, p)}}


def classify_stream(
    model,
    tokenizer,
    lines: Iterable[str],
    *,
    batch_size: int = 256,
    window: int = 32,
    threshold: float = 0.0,
    abstain: str = "neutral",
) -> Iterator[tuple[str, dict]]:
    """(line, result) in input order, reading at most ``batch_size * window`` lines ahead.

    Within that window lines are sorted by length so a batch pads only to its own longest line.
    """
    from .model import FastClassifier

    labels = model.cfg.labels
    fast = FastClassifier(model)
    buf: list[str] = []

    def flush(buf):
        keep = [i for i, t in enumerate(buf) if t.strip()]
        seqs = encode_lines(tokenizer, [buf[i] for i in keep])
        probs = probabilities(model, seqs, batch_size, fast) if keep else None
        res = [result(labels, None)] * len(buf)
        for j, i in enumerate(keep):
            res[i] = result(labels, probs[j], threshold, abstain)
        return zip(buf, res)

    for line in lines:
        buf.append(line)
        if len(buf) >= batch_size * window:
            yield from flush(buf)
            buf = []
    if buf:
        yield from flush(buf)


def evaluate_labelled(model, tokenizer, pairs: list[tuple[str, str]]) -> dict:
    """Classifier metrics on (text, label) pairs; pairs whose label the model lacks are counted, not scored."""
    labels = model.cfg.labels
    known = [(t, lab) for t, lab in pairs if lab in labels]
    unknown = sorted({lab for _, lab in pairs if lab not in labels})
    if not known:
        raise LstmTextError(
            f"none of the file's labels ({', '.join(unknown[:5])}) is one of the model's ({', '.join(labels)})"
        )
    probs = probabilities(model, encode_lines(tokenizer, [t for t, _ in known]))
    gold = torch.tensor([labels.index(lab) for _, lab in known])
    return {
        **classification_metrics(probs, gold, labels),
        "unknown_labels": unknown,
        "skipped": len(pairs) - len(known),
    }


def explain(model, tokenizer, text: str) -> list[tuple[str, float]]:
    """Word importances by occlusion: how much the predicted class's probability drops without each word."""
    words = text.split()
    if not words:
        return []
    variants = [text] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    probs = probabilities(model, encode_lines(tokenizer, variants))
    c = int(probs[0].argmax())
    return [(w, float(probs[0, c] - probs[i + 1, c])) for i, w in enumerate(words)]


# -- training ----------------------------------------------------------------------------------------------
def _batches(seqs, batch_size: int, rng: random.Random):
    """Shuffled batches of similar lengths: sort within chunks of 50 batches, then shuffle the batches."""
    idx = list(range(len(seqs)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: len(seqs[i]))
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def train_classifier(
    data: list[str],
    out: str | Path,
    *,
    dev: list[str] | None = None,
    init: str | None = None,
    model: dict,
    train: TrainConfig,
    callback: Callable[[str, dict], None] | None = None,
    label_map: dict[str, str] | None = None,
) -> dict:
    """Train a classification head (and encoder) on labelled files; select the best epoch on dev.

    Args:
        data: labelled files (TSV/CSV with label and text columns, or JSON Lines).
        out: run directory to create.
        dev: labelled files for selection and calibration; default: the last val_fraction of ``data``.
        init: a language-model run to start from (its tokenizer and encoder; ULMFiT-style discriminative
            learning rates and gradual unfreezing). The LM head is kept, so the result still generates.
        model: ModelConfig fields for a model trained from scratch.
        train: the training configuration (batch_size, lr, epochs/max_steps/time_budget, seed, device...).
        callback: receives ("start" | "step" | "eval" | "warning" | "end", info) events.
        label_map: renames or merges labels of ``data`` and ``dev`` ({old: new}).
    """
    from .checkpoint import load_model
    from .labelled import check_labels, map_labels, read_labelled
    from .model import LSTMModel
    from .tokenizer import train_tokenizer
    from .train import Runtime, StepGuard, check_out_dir, lr_at, make_optimizer, run_progress, total_steps

    cb = callback or (lambda e, i: None)
    cfg, out = train, Path(out)
    rt = Runtime.from_env(cfg.device)
    pairs = map_labels(read_labelled(data), label_map or {})
    labels = check_labels(pairs)
    if dev:
        dev_pairs = map_labels(read_labelled(dev), label_map or {})
    else:
        rng = random.Random(cfg.seed)
        pairs = pairs[:]
        rng.shuffle(pairs)
        n_dev = max(1, int(len(pairs) * cfg.val_fraction))
        pairs, dev_pairs = pairs[n_dev:], pairs[:n_dev]
    unknown = sorted({lab for _, lab in dev_pairs} - set(labels))
    if unknown:
        raise LstmTextError(f"the dev data has labels the training data lacks: {', '.join(unknown[:5])}")
    check_out_dir(out, resume=False)
    torch.manual_seed(cfg.seed)
    if init:
        lm, tokenizer, _ = load_model(init)
        if not lm.cfg.lm_head:
            raise LstmTextError(f"--init {init} is not a language model")
        mcfg = ModelConfig.from_dict(
            {**lm.cfg.to_dict(), "labels": labels, "dropout": model.get("dropout", lm.cfg.dropout)}
        )
        net = LSTMModel(mcfg)
        net.load_state_dict({k: v for k, v in lm.state_dict().items()}, strict=False)
    else:
        tokenizer = train_tokenizer("\n".join(t for t, _ in pairs), cfg.tokenizer, cfg.vocab_size)
        mcfg = ModelConfig.from_dict({**model, "vocab_size": tokenizer.vocab_size, "labels": labels, "lm_head": False})
        net = LSTMModel(mcfg)
    net = net.to(rt.device)
    lab_id = {lab: i for i, lab in enumerate(labels)}
    seqs = encode_lines(tokenizer, [t for t, _ in pairs])
    gold = torch.tensor([lab_id[lab] for _, lab in pairs])
    dev_seqs = encode_lines(tokenizer, [t for t, _ in dev_pairs])
    dev_gold = torch.tensor([lab_id[lab] for _, lab in dev_pairs])

    opt = make_optimizer(net, cfg)
    if init:  # discriminative learning rates (ULMFiT): lower layers move less
        for g in opt.param_groups:
            g["base_scale"] = 1.0
        scale = {id(p): 1.0 for p in net.parameters()}
        depth = len(net.lstms)
        for i, lstm in enumerate(net.lstms):
            for p in lstm.parameters():
                scale[id(p)] = 2.6 ** -(depth - i)
        for p in net.embed.parameters():
            scale[id(p)] = 2.6 ** -(depth + 1)
        groups = []
        for g in opt.param_groups:
            for s in sorted({scale[id(p)] for p in g["params"]}):
                groups.append(
                    {
                        **{k: v for k, v in g.items() if k != "params"},
                        "base_scale": s,
                        "params": [p for p in g["params"] if scale[id(p)] == s],
                    }
                )
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))
    encoder = [p for n, p in net.named_parameters() if not n.startswith("cls_head")]

    B = cfg.batch_size
    spe = math.ceil(len(seqs) / B)
    total = total_steps(cfg, spe)
    cb(
        "start",
        {
            "params": net.num_params(),
            "steps_per_epoch": spe,
            "total_steps": total,
            "train_tokens": sum(map(len, seqs)),
            "val_tokens": sum(map(len, dev_seqs)),
            "vocab_size": tokenizer.vocab_size,
            "device": rt.device,
            "batch_size": B,
            "start_step": 0,
        },
    )
    step, elapsed, best, best_rec = 0, 0.0, -1.0, None
    rng = random.Random(cfg.seed)
    evals_per_epoch = 2

    def progress():
        return run_progress(cfg, step, spe, elapsed)

    def evaluate_dev(loss_ema):
        nonlocal best, best_rec
        logits = class_logits(net, dev_seqs)
        acc = (logits.argmax(-1) == dev_gold).float().mean().item()
        rec = {
            "step": step,
            "epoch": round(step / spe, 3),
            "elapsed": round(elapsed, 1),
            "train_loss": loss_ema,
            "dev_accuracy": acc,
            "dev_loss": F.cross_entropy(logits, dev_gold).item(),
        }
        if rt.is_main:
            if acc > best:
                best, best_rec = acc, rec
                save_model(out / MODEL_FILE, net, tokenizer, {"dev_accuracy": acc, "step": step})
            append_jsonl(out / "metrics.jsonl", rec)
        cb("eval", rec)

    net.train()
    guard = StepGuard()
    loss_ema, t_last = math.nan, time.perf_counter()
    next_eval = 1.0 / evals_per_epoch
    while progress() < 1.0:
        for batch in _batches(seqs, B, rng):
            if progress() >= 1.0:
                break
            frozen = init is not None and progress() < 0.1  # gradual unfreezing: the head first
            for p in encoder:
                p.requires_grad_(not frozen)
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, step, progress()) * g.get("base_scale", 1.0) * guard.lr_scale
            x, lengths = pad_batch([seqs[i] for i in batch], rt.device)
            loss = F.cross_entropy(net.classify(x, lengths), gold[batch].to(rt.device))
            if not guard.step(net, opt, loss, cfg.grad_clip):
                cb("warning", guard.warning(step + 1))
            step += 1
            now = time.perf_counter()
            dt, t_last = now - t_last, now
            elapsed += dt
            lv = loss.item()
            if math.isfinite(lv):
                loss_ema = lv if math.isnan(loss_ema) else 0.98 * loss_ema + 0.02 * lv
            cb(
                "step",
                {
                    "step": step,
                    "loss": loss_ema,
                    "tok_s": int(lengths.sum()) / max(dt, 1e-9),
                    "progress": progress(),
                    "dev_accuracy": best,
                    "total_steps": total,
                },
            )
            if step / spe >= next_eval and progress() < 1.0:
                evaluate_dev(loss_ema)
                next_eval += 1.0 / evals_per_epoch
                t_last = time.perf_counter()
    evaluate_dev(loss_ema)
    # calibrate the selected model on dev, and report its dev figures
    best_net, _, _ = load_model(out / MODEL_FILE)
    logits = class_logits(best_net, dev_seqs)
    before = classification_metrics(torch.softmax(logits, -1), dev_gold, labels)
    best_net.cfg.temperature = fit_temperature(logits, dev_gold)
    after = classification_metrics(torch.softmax(logits / best_net.cfg.temperature, -1), dev_gold, labels)
    summary = {
        "steps": step,
        "epochs": round(step / spe, 3),
        "seconds": round(elapsed, 1),
        "best_step": best_rec["step"],
        "dev_accuracy": after["accuracy"],
        "dev_macro_f1": after["macro_f1"],
        "dev_ece_uncalibrated": before["ece"],
        "dev_ece": after["ece"],
        "temperature": best_net.cfg.temperature,
        "labels": labels,
        "train_examples": len(seqs),
        "dev_examples": len(dev_seqs),
        "data": [str(d) for d in data],
        "dev": [str(d) for d in dev or []],
        "init": init,
        "label_map": label_map or {},
        "config": cfg.to_dict(),
    }
    if rt.is_main:
        save_model(out / MODEL_FILE, best_net, tokenizer, summary)
    cb("end", summary)
    return summary

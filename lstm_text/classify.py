"""Training a classification head (sentiment, or any labels) on the LSTM encoder: from scratch or from a
language model (ULMFiT-style), best epoch on dev, temperature calibration. Inference is in ``inference``."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import MODEL_FILE, append_jsonl, save_model
from .config import ModelConfig, TrainConfig
from .errors import LstmTextError
from .inference import Classifier, classification_metrics, encode_lines, fit_temperature, nll, softmax
from .tokenizer import PAD


def pad_batch(seqs: list[list[int]], device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, T) and lengths (B,)."""
    T = max(1, max(len(s) for s in seqs))
    x = torch.full((len(seqs), T), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s[:T], dtype=torch.long)
    return x.to(device), torch.tensor([len(s) for s in seqs], device=device)


def class_logits(net, seqs: list[list[int]]) -> np.ndarray:
    """Uncalibrated class logits (N, C) of a torch model's current weights, on the inference path."""
    weights = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
    return Classifier(net.cfg, weights).logits(seqs)


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
    balance: bool = False,
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
        balance: weight each class's loss by the inverse of its share of ``data`` (so a rare class, such as
            SST's neutral sentences beside its many polar phrases, is still predicted), and select the best
            evaluation on dev macro-F1 instead of accuracy.
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
    counts = torch.bincount(gold, minlength=len(labels)).float()
    class_weight = (len(gold) / (len(labels) * counts)).to(rt.device) if balance else None
    select = "dev_macro_f1" if balance else "dev_accuracy"
    dev_seqs = encode_lines(tokenizer, [t for t, _ in dev_pairs])
    dev_gold = np.array([lab_id[lab] for _, lab in dev_pairs])

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
        m = classification_metrics(softmax(logits), dev_gold, labels)
        rec = {
            "step": step,
            "epoch": round(step / spe, 3),
            "elapsed": round(elapsed, 1),
            "train_loss": loss_ema,
            "dev_accuracy": m["accuracy"],
            "dev_macro_f1": m["macro_f1"],
            "dev_loss": nll(logits, dev_gold),
        }
        if rt.is_main:
            if rec[select] > best:
                best, best_rec = rec[select], rec
                save_model(out / MODEL_FILE, net, tokenizer, {select: best, "step": step})
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
            loss = F.cross_entropy(net.classify(x, lengths), gold[batch].to(rt.device), weight=class_weight)
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
                    select: best,
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
    before = classification_metrics(softmax(logits), dev_gold, labels)
    best_net.cfg.temperature = fit_temperature(logits, dev_gold)
    after = classification_metrics(softmax(logits / best_net.cfg.temperature), dev_gold, labels)
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
        "balance": balance,
        "config": cfg.to_dict(),
    }
    if rt.is_main:
        save_model(out / MODEL_FILE, best_net, tokenizer, summary)
    cb("end", summary)
    return summary

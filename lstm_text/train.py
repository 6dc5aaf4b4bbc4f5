"""Training loops for the language model. No typer, no rich: progress leaves through a callback.

``Runtime`` is the one place that knows the process's rank and device: only rank 0 logs and writes files,
so data-parallel training (torchrun + torch.distributed) slots in without touching the loop's logic.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import MODEL_FILE, RESUME_FILE, append_jsonl, atomic_write, read_safetensors, save_model
from .config import ModelConfig, TrainConfig
from .errors import LstmTextError

Callback = Callable[[str, dict], None]  # (event, info): "start", "step", "eval", "warning", "end"
SAVE_EVERY_S = 600.0  # between validations, save the resume state at least this often (seconds of training)
MAX_BAD_STEPS = 5  # non-finite losses tolerated (each skipped, learning rate halved) before stopping


class Interrupted(LstmTextError):
    """SIGINT or SIGTERM during training: the resume state was saved; exit 130 or 143."""

    def __init__(self, signum: int, step: int, out: Path):
        self.exit_code = 128 + signum
        super().__init__(
            f"interrupted at step {step}; the run is saved: continue with 'lstm-text train --out {out} --resume'"
        )


class _StopSignals:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (main thread only)."""

    def __enter__(self):
        import signal
        import threading

        self.received, self.old = 0, {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received:  # a second signal: stop at once
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc):
        import signal

        for sig, h in self.old.items():
            signal.signal(sig, h)
        return False


@dataclass
class Runtime:
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> Runtime:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            raise LstmTextError("multi-process training is not supported yet; run without torchrun")
        return cls(rank=0, world_size=1, device=resolve_device(device))


def resolve_device(name: str) -> str:
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LstmTextError("--device cuda: no CUDA GPU is available to this torch build")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LstmTextError("--device mps: Apple's MPS backend is not available here")
    return name


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over ``cfg.warmup`` steps, then cosine decay to ``lr * min_lr_ratio`` at progress 1.

    A short run (``max_steps``) warms up over at most a tenth of its steps.
    """
    warmup = min(cfg.warmup, cfg.max_steps // 10) if cfg.max_steps else cfg.warmup
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    cos = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def run_progress(cfg: TrainConfig, step: int, steps_per_epoch: int, elapsed: float) -> float:
    """How far a run is, 0 to 1: the closest of its stopping rules (steps, epochs, seconds) decides."""
    fr = [0.0]
    if cfg.max_steps:
        fr.append(step / cfg.max_steps)
    if cfg.epochs:
        fr.append(step / (cfg.epochs * steps_per_epoch))
    if cfg.time_budget:
        fr.append(elapsed / cfg.time_budget)
    return max(fr)


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int | None:
    """The step count a run stops at, when a step or epoch limit fixes it (a time budget does not)."""
    if not (cfg.max_steps or cfg.epochs or cfg.time_budget):
        raise LstmTextError("no stopping rule: give --max-steps, --epochs or --time-budget")
    limits = [s for s in (cfg.max_steps, math.ceil(cfg.epochs * steps_per_epoch) if cfg.epochs else 0) if s]
    return min(limits) if limits else None


@dataclass
class StepGuard:
    """Optimiser steps that never let a NaN in: a non-finite loss or gradient skips the step and halves the
    learning rate, at most ``MAX_BAD_STEPS`` times; then the run stops with a clear message."""

    lr_scale: float = 1.0
    bad_steps: int = 0

    def step(self, model, opt, loss: torch.Tensor, grad_clip: float) -> bool:
        """Backward, clip and update; False when the step was skipped (weights and optimiser untouched)."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or float("inf"))
        if torch.isfinite(loss) and torch.isfinite(norm):
            opt.step()
            return True
        self.bad_steps += 1
        self.lr_scale *= 0.5
        if self.bad_steps > MAX_BAD_STEPS:
            raise LstmTextError(
                f"training diverged: the loss was not finite {self.bad_steps} times even after lowering the "
                "learning rate; the last good checkpoint is kept; try a lower --lr or --grad-clip"
            )
        return False

    def warning(self, step: int) -> dict:
        return {"message": f"step {step}: non-finite loss; step skipped, learning rate now x{self.lr_scale:g}"}


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99), eps=1e-8)


def _detach(state):
    return [(h.detach(), c.detach()) for h, c in state]


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def check_out_dir(out: Path, resume: bool) -> None:
    """Refuse to overwrite an earlier run, and fail before training if ``out`` cannot be written."""
    if out.exists() and not out.is_dir():
        raise LstmTextError(f"--out {out} exists and is not a directory")
    if resume:
        if not (out / RESUME_FILE).is_file():
            raise LstmTextError(f"--resume: {out} has no {RESUME_FILE} to continue from")
        for stale in out.glob(".*.tmp"):  # a write cut short by a crash: the file it was replacing is intact
            stale.unlink(missing_ok=True)
        return
    if (out / MODEL_FILE).exists() or (out / RESUME_FILE).exists():
        raise LstmTextError(f"--out {out} already holds a run; use --resume to continue it or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise LstmTextError(f"cannot write to --out {out}: {e.strerror}") from None


class LMTrainer:
    """Trains an LSTM LM on a text, validating on its last ``val_fraction``; writes a run directory."""

    def __init__(
        self,
        text: str,
        out: Path,
        model_cfg: dict,
        cfg: TrainConfig,
        *,
        corpus: list[str],
        callback: Callback | None = None,
        resume: bool = False,
    ):
        from .data import StreamBatches, split_text
        from .model import LSTMModel
        from .tokenizer import tokenizer_from_dict, train_tokenizer

        self.out, self.cfg, self.corpus = Path(out), cfg, corpus
        self.cb = callback or (lambda event, info: None)
        self.rt = Runtime.from_env(cfg.device)
        check_out_dir(self.out, resume)
        torch.manual_seed(cfg.seed)
        saved = None
        if resume:
            tensors, meta = read_safetensors(self.out / RESUME_FILE, "torch")
            saved = json.loads(meta["resume"])
            if saved["text_hash"] != _text_hash(text):
                raise LstmTextError("--resume: the corpus differs from the one this run was started on")
            self.tokenizer = tokenizer_from_dict(json.loads(meta["tokenizer"]))
            model_cfg = saved["model"]
        train_text, self.val_text = split_text(text, cfg.val_fraction)
        if not train_text.strip():
            raise LstmTextError("the training split is empty; use a longer corpus or a smaller --val-fraction")
        if not resume:
            self.tokenizer = train_tokenizer(train_text, cfg.tokenizer, cfg.vocab_size)
        self.train_ids = self.tokenizer.encode(train_text)
        self.val_ids = self.tokenizer.encode(self.val_text)
        if len(self.val_ids) < 2:
            raise LstmTextError(
                "the validation split has fewer than two tokens; use a longer corpus or a larger --val-fraction"
            )
        if len(self.train_ids) < cfg.seq_len + 1:
            raise LstmTextError(
                f"the training text has {len(self.train_ids)} tokens, shorter than one sequence "
                f"of {cfg.seq_len + 1}; use a longer corpus or a smaller --seq-len"
            )
        B = min(cfg.batch_size, len(self.train_ids) // (cfg.seq_len + 1))
        if B < cfg.batch_size:
            self.cb("warning", {"message": f"corpus is small: using {B} rows per batch instead of {cfg.batch_size}"})
        self.batches = StreamBatches(self.train_ids, B, cfg.seq_len, cfg.seed)
        self.model_cfg = ModelConfig.from_dict({**model_cfg, "vocab_size": self.tokenizer.vocab_size})
        self.model = LSTMModel(self.model_cfg).to(self.rt.device)
        self.opt = make_optimizer(self.model, cfg)
        self.step, self.epoch, self.epoch_step, self.elapsed = 0, 0, 0, 0.0
        self.best_bpc, self.last_bpc, self.state = math.inf, math.nan, None
        self.guard = StepGuard()
        self.text_hash = _text_hash(text)
        if saved is not None:
            self._restore(tensors, saved)

    # -- resume -----------------------------------------------------------------------------------------
    def _restore(self, tensors: dict, saved: dict) -> None:
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:  # a tied head is stored once, as the embedding
            raise LstmTextError(f"--resume: {self.out / RESUME_FILE} does not match the model it was saved with")
        sd = self.opt.state_dict()
        for i in sd["state"].keys() | {int(k.split(".")[1]) for k in tensors if k.startswith("opt.")}:
            sd["state"][i] = {k.split(".")[2]: tensors[k] for k in tensors if k.startswith(f"opt.{i}.")}
        self.opt.load_state_dict(sd)
        torch.set_rng_state(tensors["rng.cpu"])
        n = saved["state_layers"]
        self.state = [
            (tensors[f"state.{i}.h"].to(self.rt.device), tensors[f"state.{i}.c"].to(self.rt.device)) for i in range(n)
        ] or None
        for k in ("step", "epoch", "epoch_step", "elapsed", "best_bpc", "last_bpc"):
            setattr(self, k, saved[k] if saved[k] is not None else math.nan)
        self.guard = StepGuard(saved["lr_scale"], saved["bad_steps"])
        if math.isnan(self.best_bpc):
            self.best_bpc = math.inf

    def _save_resume(self) -> None:
        from safetensors.torch import save

        from .checkpoint import model_tensors

        t = {f"model.{k}": v for k, v in model_tensors(self.model).items()}
        for i, st in self.opt.state_dict()["state"].items():
            for k, v in st.items():
                t[f"opt.{i}.{k}"] = v.detach().cpu().contiguous()
        t["rng.cpu"] = torch.get_rng_state()
        for i, (h, c) in enumerate(self.state or []):
            t[f"state.{i}.h"], t[f"state.{i}.c"] = h.cpu().contiguous(), c.cpu().contiguous()
        saved = {
            "step": self.step,
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "elapsed": self.elapsed,
            "best_bpc": None if math.isinf(self.best_bpc) else self.best_bpc,
            "last_bpc": None if math.isnan(self.last_bpc) else self.last_bpc,
            "state_layers": len(self.state or []),
            "text_hash": self.text_hash,
            "lr_scale": self.guard.lr_scale,
            "bad_steps": self.guard.bad_steps,
            "model": self.model_cfg.to_dict(),
            "train": self.cfg.to_dict(),
            "corpus": self.corpus,
        }
        meta = {"resume": json.dumps(saved), "tokenizer": json.dumps(self.tokenizer.to_dict())}
        atomic_write(self.out / RESUME_FILE, save(t, metadata=meta))

    # -- loop -------------------------------------------------------------------------------------------
    def progress(self) -> float:
        return run_progress(self.cfg, self.step, self.batches.steps_per_epoch(), self.elapsed)

    def evaluate(self) -> float:
        from .evaluate import lm_nll

        nll, _ = lm_nll(self.model, self.val_ids)
        return nll / math.log(2) / len(self.val_text)

    def summary(self) -> dict:
        return {
            "steps": self.step,
            "epochs": round(self.step / self.batches.steps_per_epoch(), 3),
            "tokens": self.step * self.batches.B * self.cfg.seq_len,
            "seconds": round(self.elapsed, 1),
            "best_val_bpc": None if math.isinf(self.best_bpc) else self.best_bpc,
            "last_val_bpc": None if math.isnan(self.last_bpc) else self.last_bpc,
            "train_tokens": len(self.train_ids),
            "val_tokens": len(self.val_ids),
            "val_characters": len(self.val_text),
            "corpus": self.corpus,
            "config": self.cfg.to_dict(),
        }

    def _eval_and_save(self, train_loss: float) -> None:
        bpc = self.evaluate()
        self.last_bpc = bpc
        rec = {
            "step": self.step,
            "epoch": round(self.step / self.batches.steps_per_epoch(), 4),
            "tokens": self.step * self.batches.B * self.cfg.seq_len,
            "elapsed": round(self.elapsed, 2),
            "train_loss": train_loss,
            "val_bpc": bpc,
            "lr": self.opt.param_groups[0]["lr"],
        }
        if self.rt.is_main:
            if bpc < self.best_bpc:
                self.best_bpc = bpc
                save_model(self.out / MODEL_FILE, self.model, self.tokenizer, self.summary())
            append_jsonl(self.out / "metrics.jsonl", rec)
            self._save_resume()
        self.cb("eval", rec)

    def done(self) -> bool:
        return self.progress() >= 1.0

    def run(self) -> dict:
        spe = self.batches.steps_per_epoch()
        total = total_steps(self.cfg, spe)
        self.cb(
            "start",
            {
                "params": self.model.num_params(),
                "steps_per_epoch": spe,
                "total_steps": total,
                "train_tokens": len(self.train_ids),
                "val_tokens": len(self.val_ids),
                "vocab_size": self.tokenizer.vocab_size,
                "device": self.rt.device,
                "batch_size": self.batches.B,
                "start_step": self.step,
            },
        )
        with _StopSignals() as signals:
            loss_ema = self._loop(spe, total, signals)
        self._eval_and_save(loss_ema)
        summary = self.summary()
        if self.rt.is_main:
            # the best model carries the final summary, so `info` shows the whole run
            from .checkpoint import load_model

            best, tok, _ = load_model(self.out / MODEL_FILE)
            save_model(self.out / MODEL_FILE, best, tok, summary)
        self.cb("end", summary)
        return summary

    def _loop(self, spe: int, total: int | None, signals: _StopSignals) -> float:
        cfg, model, opt = self.cfg, self.model, self.opt
        model.train()
        tokens_per_step = self.batches.B * cfg.seq_len
        next_quarter = self._next_quarter()
        last_save = self.elapsed
        loss_ema, t_last, tok_s = math.nan, time.perf_counter(), 0.0
        while not self.done():
            if self.epoch_step >= spe:
                self.epoch, self.epoch_step, self.state = self.epoch + 1, 0, None
            x, y = self.batches.window(self.epoch, self.epoch_step)
            x, y = x.to(self.rt.device), y.to(self.rt.device)
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, self.step, self.progress()) * self.guard.lr_scale
            _, loss, state = model(x, y, self.state)
            if self.guard.step(model, opt, loss, cfg.grad_clip):
                self.state = _detach(state)
            else:  # skipped: no NaN reaches the weights or the optimiser
                self.state = None
                self.cb("warning", self.guard.warning(self.step + 1))
            self.step, self.epoch_step = self.step + 1, self.epoch_step + 1
            now = time.perf_counter()
            dt, t_last = now - t_last, now
            self.elapsed += dt
            lv = loss.item()
            if math.isfinite(lv):
                loss_ema = lv if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * lv
            tok_s = tokens_per_step / dt if tok_s == 0 else 0.9 * tok_s + 0.1 * tokens_per_step / dt
            self.cb(
                "step",
                {
                    "step": self.step,
                    "loss": loss_ema,
                    "tok_s": tok_s,
                    "progress": self.progress(),
                    "val_bpc": self.last_bpc,
                    "total_steps": total,
                },
            )
            if signals.received:
                if self.rt.is_main:
                    self._save_resume()
                raise Interrupted(signals.received, self.step, self.out)
            if self._eval_due(next_quarter):
                self._eval_and_save(loss_ema)
                next_quarter, last_save = self._next_quarter(), self.elapsed
                t_last = time.perf_counter()  # evaluation is not training time for tokens/s
            elif self.elapsed - last_save >= SAVE_EVERY_S and self.rt.is_main:
                self._save_resume()
                last_save, t_last = self.elapsed, time.perf_counter()
        return loss_ema

    def _next_quarter(self) -> float:
        return (math.floor(self.progress() * 4 + 1e-9) + 1) / 4

    def _eval_due(self, next_quarter: float) -> bool:
        """Validate every ``eval_interval`` steps, or by default at every quarter of the run (and at the end)."""
        if self.done():
            return False
        if self.cfg.eval_interval:
            return self.step % self.cfg.eval_interval == 0
        return self.progress() >= next_quarter


def train_lm(
    corpus: list[str],
    out: str | Path,
    *,
    model: dict,
    train: TrainConfig,
    callback: Callback | None = None,
    resume: bool = False,
) -> dict:
    """Train a language model on ``corpus`` (paths or dataset names) into the run directory ``out``.

    Args:
        corpus: text files or registered dataset names, concatenated in order.
        out: run directory; must not hold a run unless ``resume``.
        model: ModelConfig fields (vocab_size is set from the tokenizer).
        train: the training configuration.
        callback: receives ("start" | "step" | "eval" | "warning" | "end", info) events.
        resume: continue the run in ``out`` (its saved configuration wins).
    """
    from .data import read_corpus

    out = Path(out)
    if resume:
        if not (out / RESUME_FILE).is_file():
            raise LstmTextError(f"--resume: {out} has no {RESUME_FILE} to continue from")
        _, meta = read_safetensors(out / RESUME_FILE)
        saved = json.loads(meta["resume"])
        corpus = corpus or saved["corpus"]
        train = TrainConfig.from_dict({**saved["train"], **_limits(train)})
    text = read_corpus(corpus)
    return LMTrainer(text, out, model, train, corpus=corpus, callback=callback, resume=resume).run()


def _limits(cfg: TrainConfig) -> dict:
    """On --resume, the stopping rules given now may extend the run; everything else is the saved config."""
    return {
        k: v
        for k, v in (
            ("max_steps", cfg.max_steps),
            ("epochs", cfg.epochs),
            ("time_budget", cfg.time_budget),
            ("device", cfg.device),
        )
        if v
    }

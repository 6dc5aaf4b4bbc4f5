"""The one training loop, for every task (minGPT's Trainer idea: it knows nothing of the model's insides).

A ``Task`` supplies its batches, its loss and its validation metric; the loop owns the rest: the learning
rate schedule, the step guard, step/epoch/time budgets, periodic validation with keep-the-best, the metrics
log, atomic saves, SIGINT/SIGTERM save-and-exit and exact resume (weights, optimiser, RNG, data position).
No typer, no rich: progress leaves through a callback. ``bench`` times the same ``train_step``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import (
    MODEL_FILE,
    RESUME_FILE,
    append_jsonl,
    atomic_write,
    restore_resume,
    save_model,
    write_resume,
)
from ..config import RESUMABLE, STOPPING_RULES, TrainConfig, has_stopping_rule
from ..errors import LstmTextError, notice, render
from ..plot import METRICS_FILE
from .runtime import Runtime

Callback = Callable[[str, dict], None]  # (event, info): "start", "step", "eval", "warning", "end"
SAVE_EVERY_S = 600.0  # between validations, save the resume state at least this often (seconds of training)
MAX_BAD_STEPS = 5  # non-finite losses tolerated (each skipped, learning rate halved) before stopping
LOSS_EMA = 0.95  # smoothing of the reported training loss: about the last 20 steps
CHANCE_SHARE = 0.97  # a final training loss above this share of the chance loss: the run has not learned


class Interrupted(LstmTextError):
    """SIGINT or SIGTERM during training: the resume state was saved; exit 130 or 143."""

    def __init__(self, signum: int, step: int, out: Path):
        self.exit_code = 128 + signum
        super().__init__(f"interrupted at step {step}; the run is saved: continue it with {{out}} {out} {{resume}}")


def _step_of(line: bytes) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # a damaged line goes with the records after the resume state


class StopSignals:
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


MANY_EPOCHS = 10  # a run without --epochs that reaches this many passes gets one notice: the data is small


def many_epochs(epochs: int, cfg: TrainConfig) -> dict:
    rule = "{time_budget}" if cfg.time_budget else "{max_steps}"
    fix = "{epochs} N or {patience} N" if not cfg.patience else "{epochs} N"
    return notice(
        f"the data is small: {rule} has taken the run through {epochs} passes over it so far; the model may be "
        f"memorising it (the best validation is kept); give {fix} to stop sooner"
    )


def vocab_cut(tokenizer, cfg: TrainConfig, source: str) -> dict | None:
    """The notice for a SentencePiece vocabulary that ``source`` (the corpus, the data) could not fill to
    --vocab-size, or None."""
    n = tokenizer.vocab_size
    if cfg.tokenizer not in ("bpe", "unigram") or not cfg.vocab_size or n >= cfg.vocab_size:
        return None
    return notice(
        f"the {source} holds only {n:,} distinct {cfg.tokenizer} pieces: {{vocab_size}} {cfg.vocab_size:,} cut to {n:,}"
    )


WARMUP_SHARE = 0.1  # warm-up ends by this share of the run at the latest (its steps, epochs or time budget)


def warmup_factor(cfg: TrainConfig, step: int, progress: float) -> float:
    """How far linear warm-up has taken the learning rate, 0 to 1: over ``cfg.warmup`` steps, or over the first
    ``WARMUP_SHARE`` of the run when that comes sooner (15 steps with 50 of warm-up peaked at 0.3 of --lr)."""
    if not cfg.warmup:
        return 1.0
    return min(1.0, max((step + 1) / cfg.warmup, progress / WARMUP_SHARE))


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up (``warmup_factor``), whose last step reaches ``lr``, then cosine decay to
    ``lr * min_lr_ratio`` at progress 1."""
    if step < cfg.warmup and progress < WARMUP_SHARE:  # the warm-up's steps, its last at warmup_factor 1
        return cfg.lr * warmup_factor(cfg, step, progress)
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
    if not has_stopping_rule(cfg):
        raise LstmTextError("no stopping rule: give {max_steps}, {epochs} or {time_budget}", "max_steps")
    limits = [s for s in (cfg.max_steps, math.ceil(cfg.epochs * steps_per_epoch) if cfg.epochs else 0) if s]
    return min(limits) if limits else None


@dataclass
class StepGuard:
    """Optimiser steps that never let a NaN in: a non-finite loss or gradient skips the step and halves the
    learning rate, at most ``MAX_BAD_STEPS`` times; then the run stops with a clear message."""

    lr_scale: float = 1.0
    bad_steps: int = 0

    def step(self, opt, loss: torch.Tensor, grad_clip: float, rt: Runtime, scaler=None) -> tuple[bool, torch.Tensor]:
        """Backward, average over the ranks, clip and update. Returns (False when the step was skipped: weights
        and optimiser untouched, the loss averaged over the ranks). Every rank decides alike: the decision
        reads only averaged values. With fp16's ``scaler``, an overflow is the scaler's to handle."""
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward()
        params = [p for g in opt.param_groups for p in g["params"]]
        loss = rt.average_grads(params, loss.detach())
        if scaler:
            scaler.unscale_(opt)
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip or float("inf"))
        if scaler:
            scale = scaler.get_scale()
            scaler.step(opt)  # skipped by the scaler itself when a gradient overflowed
            scaler.update()
            return bool(torch.isfinite(loss)) and scaler.get_scale() >= scale, loss
        if torch.isfinite(loss) and torch.isfinite(norm):
            opt.step()
            return True, loss
        self.bad_steps += 1
        self.lr_scale *= 0.5
        if self.bad_steps > MAX_BAD_STEPS:
            raise LstmTextError(
                f"training diverged: the loss was not finite {self.bad_steps} times even after lowering the "
                "learning rate; the last good checkpoint is kept; try a lower {lr} or {grad_clip}",
                "lr",
            )
        return False, loss

    def warning(self, step: int) -> dict:
        return notice(f"step {step}: non-finite loss; step skipped, learning rate now x{self.lr_scale:g}")


def make_optimizer(model, cfg: TrainConfig, scale: dict[int, float] | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices other than embeddings. ``scale`` ({id(param): factor}) splits the
    groups by learning-rate factor (``base_scale``), for discriminative fine-tuning."""
    named = list(model.named_parameters())
    if model.embed_rows is not None:  # the trained rows of a fixed embedding (LSTMModel.train_only_rows)
        named.append(("embed_rows", model.embed_rows))
    groups = []
    for decays in (True, False):
        params = [p for n, p in named if (p.dim() >= 2 and "embed" not in n) == decays]
        wd = cfg.weight_decay if decays else 0.0
        factors = sorted({scale[id(p)] for p in params}) if scale else [1.0]
        for f in factors:
            ps = [p for p in params if not scale or scale[id(p)] == f]
            groups.append({"params": ps, "weight_decay": wd, "base_scale": f})
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99), eps=1e-8)


def resume_config(saved: dict, train: TrainConfig, base: TrainConfig, model: dict, base_model: dict) -> TrainConfig:
    """The configuration a resumed run continues with: the saved one, with the options of ``RESUMABLE`` given
    now (those of ``train`` that differ from the command's defaults ``base`` and from TrainConfig's). Stopping
    rules given now replace the run's, so the new limit is the one that applies. Any other option given now
    that differs from the run's (``model`` over ``base_model``: the model's shape) is refused: a resumed run
    cannot change it."""
    old_train, old_model, plain = saved["train"], saved["model"], TrainConfig()
    given = {k: v for k, v in train.to_dict().items() if v != getattr(base, k) and v != getattr(plain, k)}
    shape = {k: v for k, v in model.items() if k not in base_model or base_model[k] != v}
    fixed = [(k, v, old_train.get(k)) for k, v in given.items() if k not in RESUMABLE and v != old_train.get(k)]
    fixed += [(k, v, old_model[k]) for k, v in shape.items() if k in old_model and v != old_model[k]]
    if fixed:
        k, v, was = fixed[0]
        raise LstmTextError(
            f"{{resume}} cannot change {{{k}}} (the run's {was}, given {v}): a resumed run keeps its model's shape "
            f"and training options; start a new run with {{overwrite}} or another {{out}} ({{resume}} may change "
            f"{', '.join('{' + r + '}' for r in RESUMABLE)})",
            k,
        )
    stops = {k: given.get(k, 0) for k in STOPPING_RULES} if any(k in given for k in STOPPING_RULES) else {}
    return TrainConfig.from_dict({**old_train, **stops, **{k: v for k, v in given.items() if k in RESUMABLE}})


RUN_FILES = (MODEL_FILE, RESUME_FILE, METRICS_FILE)  # what a run writes; --overwrite removes these only


def check_out_dir(out: Path, resume: bool, overwrite: bool = False) -> None:
    """Refuse to overwrite an earlier run (unless ``overwrite``: then its files go), and fail before training
    if ``out`` cannot be written."""
    if out.exists() and not out.is_dir():
        raise LstmTextError(f"{{out}} {out} exists and is not a directory", "out")
    if resume and overwrite:
        raise LstmTextError("{resume} continues the run in {out} and {overwrite} replaces it: choose one", "overwrite")
    if resume:
        if not (out / RESUME_FILE).is_file():
            if (out / MODEL_FILE).is_file():
                raise LstmTextError(
                    f"{{resume}}: the run in {out} finished and its {RESUME_FILE} was removed ({{keep_resume}} off), "
                    f"so it cannot be extended; start again with {{overwrite}} or another {{out}}",
                    "resume",
                )
            raise LstmTextError(f"{{resume}}: {out} has no {RESUME_FILE} to continue from", "resume")
        for stale in out.glob(".*.tmp"):  # a write cut short by a crash: the file it was replacing is intact
            stale.unlink(missing_ok=True)
        return
    if (out / MODEL_FILE).exists() or (out / RESUME_FILE).exists():
        if not overwrite:
            raise LstmTextError(
                f"{{out}} {out} already holds a run; continue it with {{resume}}, replace it with {{overwrite}}, "
                "or choose another {out}",
                "out",
            )
        for name in RUN_FILES:  # only the run's own files: --out may hold the user's other files
            (out / name).unlink(missing_ok=True)
        for staged in out.glob(f".{MODEL_FILE}.step*.next"):  # a best model a failed save left uncommitted
            staged.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise LstmTextError(f"cannot write to {{out}} {out}: {e.strerror}", "out") from None


def close_run(rt: Runtime, out: Path) -> None:
    """After a run: the processes part, and the main one writes the run's model card, README.md (``card.py``),
    when a run ends (rewritten on resume)."""
    rt.close()
    if rt.is_main:
        from ..card import write_card

        write_card(out)


class Task:
    """What a task gives the loop. Subclasses set the attributes and override the methods they need."""

    select = "val_bpc"  # the validation metric that picks the best model
    minimize = True  # lower ``select`` is better
    evals_per_epoch = 0  # validations per epoch; 0: at every quarter of the run
    final_passes = 1  # validation-sized passes after the loop (the final validation, ...): a time budget keeps room
    steps_per_epoch = 1

    def start_epoch(self, epoch: int) -> None:
        """Called when a new epoch begins (not on resume within an epoch)."""

    def batch(self, epoch: int, i: int):
        """Batch ``i`` of ``epoch``: addressable, so a resumed run sees exactly the batch it would have."""
        raise NotImplementedError

    def tokens(self, batch) -> int:
        """Tokens in a batch, for tokens/s."""
        raise NotImplementedError

    def before_step(self, model, progress: float) -> None:
        """Anything that depends on how far the run is (e.g. gradual unfreezing)."""

    def loss(self, model, batch) -> torch.Tensor:
        raise NotImplementedError

    def stepped(self, ok: bool) -> None:
        """After the optimiser step (``ok`` False: skipped for a non-finite loss)."""

    def chance_loss(self) -> float | None:
        """The training loss of a model that learned nothing from the inputs (None: not known)."""
        return None

    def validate(self, model) -> dict | None:
        """Validation metrics, ``select`` among them; None if a stop signal cut the validation short."""
        raise NotImplementedError

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors the task carries across steps (saved for resume)."""
        return {}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def info(self) -> dict:
        """Sizes for the start event: train_tokens, val_tokens, vocab_size, batch_size."""
        return {}

    def summary(self) -> dict:
        """What the task adds to the run's summary (stored in the model file)."""
        return {}

    def finish(self, best) -> dict:
        """Final touches to the selected model (e.g. calibration); returns summary fields to add."""
        return {}


class Trainer:
    """Runs a task's training into a run directory. ``run_state`` is the JSON a resumed run is rebuilt from
    (the task's inputs and configs); the loop adds its own position."""

    def __init__(
        self,
        task: Task,
        model,
        opt,
        cfg: TrainConfig,
        *,
        out: Path,
        tokenizer,
        runtime: Runtime,
        run_state: dict,
        callback: Callback | None = None,
        signals: StopSignals | None = None,
    ):
        self.task, self.model, self.opt, self.cfg = task, model, opt, cfg
        self.signals = signals  # installed by the caller when work before the loop (tokenizing) must stop too
        self.scaler = runtime.grad_scaler()
        self.out, self.tokenizer, self.rt, self.run_state = Path(out), tokenizer, runtime, run_state
        self.cb = callback or (lambda event, info: None)
        self.step, self.epoch, self.epoch_step, self.elapsed, self.tokens = 0, 0, 0, 0.0, 0
        self.wall = 0.0  # seconds of the whole run so far, validation and saving included (elapsed: training only)
        self.reserve = 0.0  # seconds kept free of a time budget for the work after the loop (final_passes)
        self.stale = 0  # validations in a row without a better ``select`` (--patience)
        self.val_step = -1  # the step of the latest validation
        self._t0, self._wall0 = time.perf_counter(), 0.0  # run(): the wall clock's anchor
        self.best: float | None = None
        self.last: float | None = None
        self.best_step = 0
        self.guard = StepGuard()

    # -- resume -----------------------------------------------------------------------------------------
    def restore(self, tensors: dict, state: dict) -> None:
        """Continue from a resume file's tensors and state (``checkpoint.read_resume``)."""
        self.task.load_state(restore_resume(self.out / RESUME_FILE, tensors, self.model, self.opt))
        loop = state["loop"]
        self.step, self.epoch, self.epoch_step = loop["step"], loop["epoch"], loop["epoch_step"]
        self.elapsed, self.tokens = loop["elapsed"], loop["tokens"]
        self.wall, self.reserve = loop.get("wall", self.elapsed), loop.get("reserve", 0.0)
        self.stale = loop.get("stale", 0)
        self.best, self.last, self.best_step = loop["best"], loop["last"], loop["best_step"]
        self.guard = StepGuard(loop["lr_scale"], loop["bad_steps"])
        if self.rt.is_main:
            self._reconcile()

    def _pending(self, step: int) -> Path:
        return self.out / f".{MODEL_FILE}.step{step}.next"

    def _reconcile(self) -> None:
        """Make the model file and the metrics agree with the resume state, the last thing a validation writes:
        a save that failed half-way (no space left) left a newer best model staged and newer metric lines."""
        for staged in self.out.glob(f".{MODEL_FILE}.step*.next"):
            if staged == self._pending(self.best_step):  # written, then committed by the resume state
                os.replace(staged, self.out / MODEL_FILE)
            else:  # never committed: the resumed run validates that step again
                staged.unlink()
        path = self.out / METRICS_FILE
        if path.exists():
            lines = path.read_bytes().splitlines(keepends=True)
            keep = [x for x in lines if _step_of(x) <= self.step]
            if len(keep) != len(lines):
                atomic_write(path, b"".join(keep))

    def save_resume(self) -> None:
        """Every rank calls this (the task's carried tensors are gathered from all); rank 0 writes."""
        tensors = self.task.state()
        if not self.rt.is_main:
            return
        loop = {
            "step": self.step,
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "elapsed": self.elapsed,
            "wall": self.wall,
            "reserve": self.reserve,
            "stale": self.stale,
            "tokens": self.tokens,
            "best": self.best,
            "last": self.last,
            "best_step": self.best_step,
            "lr_scale": self.guard.lr_scale,
            "bad_steps": self.guard.bad_steps,
        }
        write_resume(
            self.out / RESUME_FILE,
            self.model,
            self.opt,
            tensors=tensors,
            state={**self.run_state, "loop": loop},
            tokenizer=self.tokenizer,
        )

    # -- one step ---------------------------------------------------------------------------------------
    def progress(self) -> float:
        """0 to 1. A time budget is wall-clock: validations and saves count, and the run ends early enough for
        the work after the loop (as long as the last validation took, ``final_passes`` times) to fit."""
        return run_progress(self.cfg, self.step, self.task.steps_per_epoch, self.wall + self.reserve)

    def _tick(self) -> None:
        self.wall = self._wall0 + time.perf_counter() - self._t0

    def patience_out(self) -> bool:
        """--patience N: the last N validations all failed to improve on the best."""
        return bool(self.cfg.patience) and self.stale >= self.cfg.patience

    def train_step(self, batch) -> torch.Tensor:
        """One guarded optimiser step on ``batch`` at the scheduled learning rate; returns the loss."""
        progress = self.progress()
        lr = lr_at(self.cfg, self.step, progress) * self.guard.lr_scale
        for g in self.opt.param_groups:
            g["lr"] = lr * g.get("base_scale", 1.0)
        self.task.before_step(self.model, progress)
        with self.rt.autocast():
            loss = self.task.loss(self.model, batch)
        bad = self.guard.bad_steps
        ok, loss = self.guard.step(self.opt, loss, self.cfg.grad_clip, self.rt, self.scaler)
        self.task.stepped(ok)
        if self.guard.bad_steps > bad:  # skipped: no NaN reaches the weights or the optimiser
            self.cb("warning", self.guard.warning(self.step + 1))
        return loss

    def _sync(self, signals: StopSignals) -> None:
        """Ranks agree after each step: a stop signal on any of them, and rank 0's clock (so that a time budget,
        the validation schedule and the saves decide alike everywhere)."""
        if not self.rt.distributed:
            return
        main = self.rt.is_main
        sig, wall, reserve = self.rt.agree(
            [signals.received, self.wall if main else 0.0, self.reserve if main else 0.0]
        )
        signals.received, self.wall, self.reserve = int(sig), wall, reserve

    # -- the loop ---------------------------------------------------------------------------------------
    def summary(self) -> dict:
        spe, sel = self.task.steps_per_epoch, self.task.select
        return {
            "steps": self.step,
            "epochs": round(self.step / spe, 3),
            "tokens": self.tokens,
            "seconds": round(self.elapsed, 1),
            "wall_seconds": round(self.wall, 1),
            f"best_{sel}": self.best,
            f"last_{sel}": self.last,
            "best_step": self.best_step,
            **self.task.summary(),
            "config": self.cfg.to_dict(),
        }

    def _better(self, v: float) -> bool:
        if not math.isfinite(v):
            return False
        return self.best is None or (v < self.best if self.task.minimize else v > self.best)

    def validate(self, train_loss: float) -> None:
        """Validate, keep the model if it is the best so far, log the record and save the resume state."""
        t = time.perf_counter()
        metrics = self.task.validate(self.model)
        if metrics is None:  # a stop signal cut it short: the loop saves and stops
            return
        self.val_step = self.step
        self._tick()
        v = metrics[self.task.select]
        self.last = v
        rec = {
            "step": self.step,
            "epoch": round(self.step / self.task.steps_per_epoch, 4),
            "tokens": self.tokens,
            "elapsed": round(self.elapsed, 2),
            "wall": round(self.wall, 2),  # seconds of the whole run so far (elapsed: training steps only)
            "train_loss": train_loss,
            **metrics,
            "lr": self.opt.param_groups[0]["lr"],
        }
        better = self._better(v)
        if better:  # every rank ran the same validation: they agree on the best and on patience
            self.best, self.best_step, self.stale = v, self.step, 0
            if self.rt.is_main:  # staged: the resume state commits it (a failed save leaves the three consistent)
                save_model(self._pending(self.step), self.model, self.tokenizer, self.summary())
        elif self._learning(train_loss):
            self.stale += 1
        if self.rt.is_main:
            append_jsonl(self.out / METRICS_FILE, rec)
        self.save_resume()
        if better and self.rt.is_main:
            os.replace(self._pending(self.step), self.out / MODEL_FILE)
        self.reserve = (time.perf_counter() - t) * self.task.final_passes
        self._tick()
        self.cb("eval", rec)

    def _learning(self, train_loss: float) -> bool:
        """Whether a validation without progress counts towards --patience: only once the warm-up is over and
        the training loss has left chance (before, a flat dev score says nothing: on a small file, dev at the
        majority class stopped runs that had not started to learn)."""
        if warmup_factor(self.cfg, self.step - 1, self.progress()) < 1.0:
            return False
        chance = self.task.chance_loss()
        return chance is None or not math.isfinite(train_loss) or train_loss < CHANCE_SHARE * chance

    def _not_learned(self, loss_ema: float) -> list[str]:
        """What says this run cannot have learned: its training loss still at chance."""
        chance = self.task.chance_loss()
        if chance is None or not math.isfinite(loss_ema) or loss_ema < CHANCE_SHARE * chance:
            return []
        return [
            f"the model has not learned: its training loss {loss_ema:.3f} is still at chance ({chance:.3f}, what "
            f"predicting the label shares scores) after {self.step:,} steps; train longer ({{epochs}}, {{max_steps}}) "
            "or with a larger {lr}"
        ]

    def _next_eval(self) -> float:
        x, per = self._position()
        return (math.floor(x * per + 1e-9) + 1) / per

    def _position(self) -> tuple[float, int]:
        """Where the run is on the validation schedule's axis: (epochs, evals per epoch) or (progress, 4)."""
        if self.task.evals_per_epoch:
            return self.step / self.task.steps_per_epoch, self.task.evals_per_epoch
        return self.progress(), 4

    def _eval_due(self, next_eval: float) -> bool:
        if self.progress() >= 1.0:
            return False  # the final validation follows the loop
        if self.cfg.eval_interval:
            return self.step % self.cfg.eval_interval == 0
        return self._position()[0] >= next_eval

    def run(self) -> dict:
        spe = self.task.steps_per_epoch
        total = total_steps(self.cfg, spe)
        self.cb(
            "start",
            {
                "params": sum(p.numel() for p in self.model.parameters()),
                "steps_per_epoch": spe,
                "total_steps": total,
                "device": self.rt.device,
                "vocab_size": self.tokenizer.vocab_size,
                "start_step": self.step,
                "time_budget": self.cfg.time_budget,
                "wall": self.wall,
                **self.task.info(),
            },
        )
        self.model.train()
        self.rt.broadcast_params(self.model)
        if self.rt.rank:  # each rank its own dropout masks, reproducibly
            torch.manual_seed(self.cfg.seed + 1_000_003 * self.rt.rank + self.step)
        self._t0, self._wall0 = time.perf_counter(), self.wall
        with contextlib.nullcontext(self.signals) if self.signals else StopSignals() as signals:
            loss_ema = self._loop(total, signals)
            stop = "patience" if self.patience_out() else "limit"
            if self.val_step != self.step:  # after patience ran out, the model is the one just validated
                self.validate(loss_ema)
                self._sync(signals)
                if signals.received:  # during the final validation: what was trained is saved, resumable
                    self.save_resume()
                    raise Interrupted(signals.received, self.step, self.out)
        warnings = self._not_learned(loss_ema)
        for w in warnings:
            self.cb("warning", notice(w))
        warnings = [render(w) for w in warnings]
        if self.rt.is_main:  # the selected model gets the task's final touches and the whole run's summary
            from ..checkpoint import load_model

            best, _, _ = load_model(self.out / MODEL_FILE)
            extra = self.task.finish(best)
            self._tick()
            summary = self.summary() | {"stop": stop} | extra | ({"warnings": warnings} if warnings else {})
            save_model(self.out / MODEL_FILE, best, self.tokenizer, summary)
            if not self.cfg.keep_resume:  # finished: 3x the model that only --resume reads
                (self.out / RESUME_FILE).unlink(missing_ok=True)
        else:
            summary = self.summary() | {"stop": stop}
        self.cb("end", summary)
        return summary

    def _loop(self, total: int | None, signals: StopSignals) -> float:
        spe, task = self.task.steps_per_epoch, self.task
        next_eval, last_save = self._next_eval(), self.wall
        loss_ema, t_last, tok_s = math.nan, time.perf_counter(), 0.0
        while self.progress() < 1.0 and not self.patience_out():
            if self.epoch_step >= spe:
                self.epoch, self.epoch_step = self.epoch + 1, 0
                task.start_epoch(self.epoch)
                if self.epoch == MANY_EPOCHS and not self.cfg.epochs:
                    self.cb("notice", many_epochs(self.epoch, self.cfg))
            batch = task.batch(self.epoch, self.epoch_step)
            loss = self.train_step(batch)
            self.step, self.epoch_step = self.step + 1, self.epoch_step + 1
            now = time.perf_counter()
            dt, t_last = now - t_last, now
            self.elapsed += dt
            self._tick()
            lv = loss.item()
            if math.isfinite(lv):
                loss_ema = lv if math.isnan(loss_ema) else LOSS_EMA * loss_ema + (1 - LOSS_EMA) * lv
            n = task.tokens(batch)
            self.tokens += n
            rate = n / max(dt, 1e-9)
            tok_s = rate if tok_s == 0 else 0.9 * tok_s + 0.1 * rate
            self._sync(signals)
            self.cb(
                "step",
                {
                    "step": self.step,
                    "loss": loss_ema,
                    "tok_s": tok_s,
                    "progress": self.progress(),
                    task.select: math.nan if self.last is None else self.last,
                    "total_steps": total,
                },
            )
            if self._eval_due(next_eval) and not signals.received:
                self.validate(loss_ema)
                self._sync(signals)
                next_eval, last_save = self._next_eval(), self.wall
                t_last = time.perf_counter()  # validation is not training time
            elif self.wall - last_save >= SAVE_EVERY_S:
                self.save_resume()
                last_save, t_last = self.wall, time.perf_counter()
            if signals.received:
                self.save_resume()
                raise Interrupted(signals.received, self.step, self.out)
        return loss_ema

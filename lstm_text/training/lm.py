"""The language-model task: next-token loss on truncated-BPTT windows read from the corpus's token files,
with the LSTM state carried across them, validated in bits per character on the last ``val_fraction`` of
each file (all of it when small, else a fixed sample of ``val_tokens``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..checkpoint import RESUME_FILE, read_resume
from ..config import ModelConfig, TrainConfig, check_model, lm_train
from ..errors import LstmTextError, notice
from .loop import (
    Callback,
    StopSignals,
    Task,
    Trainer,
    check_out_dir,
    close_run,
    make_optimizer,
    resume_config,
    vocab_cut,
)
from .runtime import Runtime

if TYPE_CHECKING:
    from ..model import State


class LMTask(Task):
    select = "val_bpc"
    minimize = True
    evals_per_epoch = 0  # quarters of the run

    def __init__(self, tokens, rows: int, cfg: TrainConfig, corpus: list, rt: Runtime, cancelled):
        """``tokens``: a ``data.tokens.TokenSet``; ``rows``: the global batch (R rows, split among the ranks)."""
        from ..data.batches import StreamBatches
        from ..data.tokens import char_lengths, val_sample

        b = rows // rt.world_size
        self.batches = StreamBatches(tokens.train, rows, cfg.seq_len, cfg.seed, (rt.rank * b, (rt.rank + 1) * b))
        self.steps_per_epoch = self.batches.steps_per_epoch()
        self.tokens_, self.rows, self.rt, self.cancelled = tokens, rows, rt, cancelled
        self.corpus, self.device = corpus, rt.device
        self.carried: State | None = None  # the LSTM state carried into the next window
        self.new: State | None = None  # the state after the last window (carried once its step is taken)
        # validation: the whole split when it is small, else a fixed seeded sample of it (bounded time)
        self.sample = val_sample(tokens.val, cfg.val_tokens, VAL_SPAN, cfg.seed)
        if self.sample is None:
            self.val_ids, self.val_chars = tokens.val, tokens.val_chars
        else:
            self.val_chars = int(char_lengths(tokens.tokenizer)[self.sample[:, 1:]].sum())

    def start_epoch(self, epoch: int) -> None:
        self.carried = None  # a new epoch starts a new pass over the rows

    def batch(self, epoch: int, i: int):
        return tuple(self.rt.batch_to(t) for t in self.batches.window(epoch, i))

    def tokens(self, batch) -> int:
        return batch[0].numel() * self.rt.world_size

    def loss(self, model, batch) -> torch.Tensor:
        x, y = batch  # (B, T) each
        _, loss, self.new = model(x, y, self.carried)
        return loss

    def stepped(self, ok: bool) -> None:
        if ok:
            assert self.new is not None  # ``loss`` set it
            self.carried = [(h.detach(), c.detach()) for h, c in self.new]
        else:
            self.carried = None

    def validate(self, model) -> dict | None:
        from ..evaluate import lm_nll, rows_nll

        if self.sample is None:
            r = lm_nll(model, self.val_ids, cancelled=self.cancelled)
        else:
            r = rows_nll(model, self.sample, cancelled=self.cancelled)
        return None if r is None else {"val_bpc": r[0] / math.log(2) / self.val_chars}

    def state(self) -> dict[str, torch.Tensor]:
        """The carried LSTM state of all R rows (gathered from every rank), for a resume of any world size."""
        t: dict[str, torch.Tensor] = {}
        for i, (h, c) in enumerate(self.carried or []):  # (layers*dirs, B, H) each
            t[f"state.{i}.h"], t[f"state.{i}.c"] = self.rt.gather_rows(h, 1), self.rt.gather_rows(c, 1)
        return t

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        n = len([k for k in tensors if k.endswith(".h")])
        lo, hi = self.batches.lo, self.batches.hi
        self.carried = [
            (tensors[f"state.{i}.h"][:, lo:hi].to(self.device), tensors[f"state.{i}.c"][:, lo:hi].to(self.device))
            for i in range(n)
        ] or None

    def info(self) -> dict:
        t = self.tokens_
        return {
            "train_tokens": len(t.train),
            "val_tokens": len(t.val),
            "val_sample_tokens": None if self.sample is None else int(self.sample.size),
            "batch_size": self.rows,
            "world_size": self.rt.world_size,
            "tokens": t.info,
        }

    def summary(self) -> dict:
        t = self.tokens_
        return {
            "train_tokens": len(t.train),
            "val_tokens": len(t.val),
            "val_characters": self.val_chars,
            "val_sample_tokens": None if self.sample is None else int(self.sample.size),
            "corpus": self.corpus,
            "world_size": self.rt.world_size,
        }


VAL_SPAN = 2048  # tokens per row of the validation sample: long enough for the state to warm up


def train_lm(
    corpus: list[str],
    out: str | Path,
    *,
    model: dict,
    train: TrainConfig,
    callback: Callback | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    """Train a language model on ``corpus`` into the run directory ``out``.

    Under torchrun every process calls this; they train one model together (``runtime``), rank 0 writes.

    Args:
        corpus: text files, dataset names, directories or globs (``.gz`` read as text).
        out: run directory; must not hold a run unless ``resume``.
        model: ModelConfig fields (vocab_size is set from the tokenizer).
        train: the training configuration; ``batch_size`` is rows per process.
        callback: receives ("start" | "step" | "eval" | "notice" | "warning" | "end", info) events.
        resume: continue the run in ``out``: its saved configuration, with the stopping rules, patience, device
            given now (``loop.resume_config``; other options that differ from the run's are refused).
        overwrite: replace a run already in ``out`` (its model, resume state and metrics log).
    """
    from ..data.corpus import expand
    from ..model import LSTMModel

    check_model(model)  # before any data is read
    out = Path(out)
    saved = tokenizer = None
    if resume:
        check_out_dir(out, resume=True, overwrite=overwrite)
        tensors, saved, tokenizer = read_resume(out / RESUME_FILE)  # read once: configs, tensors, tokenizer
        if saved.get("task") != "lm":
            raise LstmTextError(
                f"{{resume}}: {out} is not a language-model run; continue a classifier run as a classifier", "resume"
            )
        corpus = corpus or saved["corpus"]
        train = resume_config(saved, train, lm_train(resume=True), model, {})
        model = saved["model"]
    cfg = train
    if not cfg.batch_size:
        raise LstmTextError("{batch_size} must be a positive integer", "batch_size")
    if cfg.tokenizer == "word" or cfg.normalize:
        raise LstmTextError(
            "word tokenizers and text normalisation are for classifiers: a language model must "
            "reproduce text exactly; use {tokenizer} char, bpe or unigram",
            "tokenizer",
        )
    expand(corpus)  # a missing or unreadable file fails before anything is created
    rt = Runtime.from_env(cfg.device, cfg.precision)
    cb = rt.main_only(callback)
    if not resume and rt.is_main:
        check_out_dir(out, resume=False, overwrite=overwrite)
    rows = rt.global_rows(cfg.batch_size, saved)
    torch.manual_seed(cfg.seed)
    with StopSignals() as signals:
        tokens = _tokens(corpus, cfg, tokenizer, rt, lambda: signals.received)
        if saved is not None and saved.get("corpus_digest", tokens.fingerprint) != tokens.fingerprint:
            raise LstmTextError("{resume}: the corpus differs from the one this run was started on", "corpus")
        if not resume and (cut := vocab_cut(tokens.tokenizer, cfg, "corpus")):
            cb("notice", cut)
        rows = _fit_rows(tokens, cfg, rows, rt, saved, cb)
        net = LSTMModel(ModelConfig.from_dict({**model, "vocab_size": tokens.tokenizer.vocab_size})).to(rt.device)
        task = LMTask(tokens, rows, cfg, corpus, rt, lambda: signals.received and not rt.distributed)
        run_state = {
            "task": "lm",
            "corpus": corpus,
            "corpus_digest": tokens.fingerprint,
            "rows": rows,
            "model": net.cfg.to_dict(),
            "train": cfg.to_dict(),
        }
        trainer = Trainer(
            task,
            net,
            make_optimizer(net, cfg),
            cfg,
            out=out,
            tokenizer=tokens.tokenizer,
            runtime=rt,
            run_state=run_state,
            callback=cb,
            signals=signals,
        )
        if saved is not None:  # resuming
            trainer.restore(tensors, saved)
        summary = trainer.run()
    close_run(rt, out)
    return summary


def _fit_rows(tokens, cfg: TrainConfig, rows: int, rt: Runtime, saved: dict | None, cb) -> int:
    """The run's global batch in rows, checked against the token files: a corpus too small for ``rows`` rows of
    ``seq_len + 1`` tokens gets fewer (a new run only; a resumed run keeps its own)."""
    n = len(tokens.train)
    if len(tokens.val) < 2:
        raise LstmTextError(
            "the validation split has fewer than two tokens; use a longer corpus or a larger {val_fraction}",
            param="val_fraction",
        )
    if n < cfg.seq_len + 1:
        raise LstmTextError(
            f"the training text has {n} tokens, shorter than one sequence "
            f"of {cfg.seq_len + 1}; use a longer corpus or a smaller {{seq_len}}",
            param="seq_len",
        )
    fit = n // (cfg.seq_len + 1) // rt.world_size * rt.world_size
    if fit < rows and not saved:
        cb("warning", notice(f"corpus is small: using {fit} rows per batch instead of {rows}"))
        rows = fit
    if rows % rt.world_size or rows < rt.world_size:
        raise LstmTextError(
            f"the run's batch of {rows} rows does not split evenly among {rt.world_size} processes; "
            f"use a number of processes that divides {rows}"
        )
    return rows


def _tokens(corpus: list[str], cfg: TrainConfig, tokenizer, rt: Runtime, cancelled):
    """The corpus's token files: built (or found in the cache) by one process per machine, then opened by all."""
    from ..data.tokens import prepare

    opts = dict(
        kind=cfg.tokenizer,
        vocab_size=cfg.vocab_size,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
        sample_bytes=cfg.tokenizer_sample,
        tokenizer=tokenizer,
        cancelled=cancelled,
    )
    if not rt.distributed:
        return prepare(corpus, **opts)
    err = tokens = None
    if rt.local_rank == 0:
        try:
            tokens = prepare(corpus, **opts)
        except LstmTextError as e:
            err = e
    failed = rt.agree([1.0 if err else 0.0])[0]  # doubles as the barrier: the others wait for the files
    if err:
        raise err
    if failed:
        raise LstmTextError("another process could not tokenize the corpus (its error is in its log)")
    return tokens or prepare(corpus, **opts, build=False)

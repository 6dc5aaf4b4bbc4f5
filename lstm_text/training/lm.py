"""The language-model task: next-token loss on truncated-BPTT windows with the LSTM state carried across
them, validated in bits per character on the last ``val_fraction`` of the text."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch

from ..checkpoint import RESUME_FILE, read_resume
from ..config import ModelConfig, TrainConfig
from ..errors import LstmTextError
from .loop import Callback, Task, Trainer, check_out_dir, make_optimizer, vocab_cut
from .runtime import Runtime


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class LMTask(Task):
    command = "train"
    select = "val_bpc"
    minimize = True
    evals_per_epoch = 0  # quarters of the run

    def __init__(
        self, train_ids: list[int], val_ids: list[int], val_chars: int, batch_size: int, cfg: TrainConfig, corpus: list
    ):
        from ..data.batches import StreamBatches

        self.batches = StreamBatches(train_ids, batch_size, cfg.seq_len, cfg.seed)
        self.steps_per_epoch = self.batches.steps_per_epoch()
        self.n_train, self.val_ids, self.val_chars = len(train_ids), val_ids, val_chars
        self.corpus, self.device, self.carried, self.new = corpus, "cpu", None, None

    def start_epoch(self, epoch: int) -> None:
        self.carried = None  # a new epoch starts a new pass over the rows

    def batch(self, epoch: int, i: int):
        return self.batches.window(epoch, i)

    def tokens(self, batch) -> int:
        return batch[0].numel()

    def loss(self, model, batch) -> torch.Tensor:
        x, y = (t.to(self.device, non_blocking=True) for t in batch)  # (B, T) each
        _, loss, self.new = model(x, y, self.carried)
        return loss

    def stepped(self, ok: bool) -> None:
        self.carried = [(h.detach(), c.detach()) for h, c in self.new] if ok else None

    def validate(self, model) -> dict:
        from ..evaluate import lm_nll

        nll, _ = lm_nll(model, self.val_ids)
        return {"val_bpc": nll / math.log(2) / self.val_chars}

    def state(self) -> dict[str, torch.Tensor]:
        t = {}
        for i, (h, c) in enumerate(self.carried or []):
            t[f"state.{i}.h"], t[f"state.{i}.c"] = h, c
        return t

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        n = len([k for k in tensors if k.endswith(".h")])
        self.carried = [
            (tensors[f"state.{i}.h"].to(self.device), tensors[f"state.{i}.c"].to(self.device)) for i in range(n)
        ] or None

    def info(self) -> dict:
        return {
            "train_tokens": self.n_train,
            "val_tokens": len(self.val_ids),
            "batch_size": self.batches.B,
        }

    def summary(self) -> dict:
        return {
            "train_tokens": self.n_train,
            "val_tokens": len(self.val_ids),
            "val_characters": self.val_chars,
            "corpus": self.corpus,
        }


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
        resume: continue the run in ``out`` (its saved configuration wins; stopping rules given now extend it).
    """
    from ..data import read_corpus, split_text
    from ..model import LSTMModel
    from ..tokenizer import train_tokenizer

    out = Path(out)
    cb = callback or (lambda event, info: None)
    saved = None
    if resume:
        check_out_dir(out, resume=True)
        tensors, saved, tokenizer = read_resume(out / RESUME_FILE)  # read once: configs, tensors, tokenizer
        if saved.get("task") != "lm":
            raise LstmTextError(f"--resume: {out} is not a language-model run; use 'lstm-text train-classifier'")
        corpus = corpus or saved["corpus"]
        train = TrainConfig.from_dict({**saved["train"], **limits(train)})
        model = saved["model"]
    cfg = train
    if cfg.tokenizer == "word" or cfg.normalize:
        raise LstmTextError(
            "word tokenizers and text normalisation are for classifiers: a language model must "
            "reproduce text exactly; use --tokenizer char, bpe or unigram"
        )
    text = read_corpus(corpus)
    rt = Runtime.from_env(cfg.device)
    if not resume:
        check_out_dir(out, resume=False)
    torch.manual_seed(cfg.seed)
    if saved is not None and saved["text_hash"] != text_hash(text):
        raise LstmTextError("--resume: the corpus differs from the one this run was started on")
    train_text, val_text = split_text(text, cfg.val_fraction)
    if not train_text.strip():
        raise LstmTextError("the training split is empty; use a longer corpus or a smaller --val-fraction")
    if not resume:
        tokenizer = train_tokenizer(train_text, cfg.tokenizer, cfg.vocab_size)
        if notice := vocab_cut(tokenizer, cfg, "corpus"):
            cb("notice", notice)
    train_ids, val_ids = tokenizer.encode(train_text), tokenizer.encode(val_text)
    if len(val_ids) < 2:
        raise LstmTextError(
            "the validation split has fewer than two tokens; use a longer corpus or a larger --val-fraction"
        )
    if len(train_ids) < cfg.seq_len + 1:
        raise LstmTextError(
            f"the training text has {len(train_ids)} tokens, shorter than one sequence "
            f"of {cfg.seq_len + 1}; use a longer corpus or a smaller --seq-len"
        )
    B = min(cfg.batch_size, len(train_ids) // (cfg.seq_len + 1))
    if B < cfg.batch_size:
        cb("warning", {"message": f"corpus is small: using {B} rows per batch instead of {cfg.batch_size}"})
    mcfg = ModelConfig.from_dict({**model, "vocab_size": tokenizer.vocab_size})
    net = LSTMModel(mcfg).to(rt.device)
    task = LMTask(train_ids, val_ids, len(val_text), B, cfg, corpus)
    task.device = rt.device
    run_state = {
        "task": "lm",
        "corpus": corpus,
        "text_hash": text_hash(text),
        "model": mcfg.to_dict(),
        "train": cfg.to_dict(),
    }
    trainer = Trainer(
        task,
        net,
        make_optimizer(net, cfg),
        cfg,
        out=out,
        tokenizer=tokenizer,
        runtime=rt,
        run_state=run_state,
        callback=cb,
    )
    if resume:
        trainer.restore(tensors, saved)
    return trainer.run()


def limits(cfg: TrainConfig) -> dict:
    """On --resume, the stopping rules given now may extend the run; everything else is the saved config."""
    return {
        k: v
        for k, v in (
            ("max_steps", cfg.max_steps),
            ("epochs", cfg.epochs),
            ("time_budget", cfg.time_budget),
            ("patience", cfg.patience),
            ("device", cfg.device),
        )
        if v
    }

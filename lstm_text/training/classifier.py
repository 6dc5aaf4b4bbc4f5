"""The classifier task: a classification head (sentiment, or any labels) on the LSTM encoder, trained from
scratch or from a language model (ULMFiT: discriminative learning rates, gradual unfreezing), selected on
dev, then temperature-calibrated. Inference is ``infer.classifier``; the loop is ``loop``."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import RESUME_FILE, read_resume
from ..config import (
    CLASSIFIER,
    ModelConfig,
    TrainConfig,
    check_model,
    classifier_model,
    classifier_train,
    fit_classifier,
)
from ..errors import LstmTextError, notice
from ..model import LSTMModel
from .loop import Callback, Task, Trainer, check_out_dir, close_run, make_optimizer, resume_config, vocab_cut
from .runtime import Runtime

ULMFIT_DECAY = 2.6  # each layer down learns 2.6x slower (Howard & Ruder 2018)
UNFREEZE_AT = 0.1  # from --init, the encoder stays frozen for the first tenth of the run: the head first


def class_logits(net, seqs: list[list[int]]) -> np.ndarray:
    """Uncalibrated class logits (N, C) of a torch model's current weights, on the inference path."""
    from ..infer.classifier import Classifier

    weights = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
    return Classifier(net.cfg, weights).logits(seqs)


class ClassifierTask(Task):
    evals_per_epoch = 2
    final_passes = 2  # the final validation, then the calibration pass over dev

    def __init__(
        self,
        seqs,
        gold,
        dev_seqs,
        dev_gold,
        labels,
        cfg: TrainConfig,
        *,
        balance: bool,
        unfreeze: list,
        inputs: dict,
        rows: int = 0,
        rt: Runtime | None = None,
    ):
        """``rows``: the global batch (lines per step over all ranks; default ``cfg.batch_size``). ``unfreeze``:
        the encoder parameters that gradual unfreezing holds back at first (fine-tuning from ``--init``)."""
        from ..data.batches import LineBatches

        self.seqs, self.gold, self.dev_seqs, self.dev_gold, self.labels = seqs, gold, dev_seqs, dev_gold, labels
        self.rt = rt or Runtime()
        self.batches = LineBatches(seqs, rows or cfg.batch_size, cfg.seed)
        self.steps_per_epoch = self.batches.steps_per_epoch()
        self.select = "dev_macro_f1" if balance else "dev_accuracy"
        self.minimize = False
        counts = torch.bincount(gold, minlength=len(labels)).float()
        self.class_weight = len(gold) / (len(labels) * counts) if balance else None
        self.unfreeze, self.inputs, self.device = unfreeze, inputs, self.rt.device

    def batch(self, epoch: int, i: int):
        """(this rank's lines, the whole batch's lines): rank r of W takes every W-th line of the batch."""
        lines = self.batches.indices(epoch, i)
        return lines[self.rt.rank :: self.rt.world_size], lines

    def tokens(self, batch) -> int:
        return sum(len(self.seqs[i]) for i in batch[1])

    def before_step(self, model, progress: float) -> None:
        for p in self.unfreeze:  # gradual unfreezing (ULMFiT): the head alone first
            p.requires_grad_(progress >= UNFREEZE_AT)

    def loss(self, model, batch) -> torch.Tensor:
        from ..data.batches import pad_batch

        mine, lines = batch
        share = len(mine) * self.rt.world_size / len(lines)  # averaged over ranks: the whole batch's mean loss
        if not mine:  # a last batch smaller than the group: this rank adds nothing, but joins the all-reduce
            mine, share = lines[:1], 0.0
        x, lengths = pad_batch([self.seqs[i] for i in mine], self.device)  # (B, T), (B,)
        w = None if self.class_weight is None else self.class_weight.to(self.device)
        return share * F.cross_entropy(model.classify(x, lengths), self.gold[mine].to(self.device), weight=w)

    def chance_loss(self) -> float:
        """Predicting the label shares: their entropy (balanced weights make it ln C, the uniform guess)."""
        if self.class_weight is not None:
            return float(np.log(len(self.labels)))
        p = torch.bincount(self.gold, minlength=len(self.labels)).double() / len(self.gold)
        return float(-(p[p > 0] * p[p > 0].log()).sum())

    def validate(self, model) -> dict:
        from ..evaluate import classification_metrics, nll
        from ..infer.classifier import softmax

        logits = class_logits(model, self.dev_seqs)
        m = classification_metrics(softmax(logits), self.dev_gold, self.labels)
        return {"dev_accuracy": m["accuracy"], "dev_macro_f1": m["macro_f1"], "dev_loss": nll(logits, self.dev_gold)}

    def info(self) -> dict:
        return {
            "train_tokens": sum(map(len, self.seqs)),
            "val_tokens": sum(map(len, self.dev_seqs)),
            "batch_size": self.batches.B,
            "world_size": self.rt.world_size,
        }

    def summary(self) -> dict:
        return self.inputs

    def finish(self, best) -> dict:
        """Calibrate the selected model's temperature on dev; its dev figures."""
        from ..evaluate import classification_metrics, fit_temperature
        from ..infer.classifier import softmax

        logits = class_logits(best, self.dev_seqs)
        before = classification_metrics(softmax(logits), self.dev_gold, self.labels)
        best.cfg.calibration_temperature = fit_temperature(logits, self.dev_gold)
        after = classification_metrics(softmax(logits / best.cfg.calibration_temperature), self.dev_gold, self.labels)
        return {
            "dev_accuracy": after["accuracy"],
            "dev_macro_f1": after["macro_f1"],
            "dev_ece_uncalibrated": before["ece"],
            "dev_ece": after["ece"],
            "calibration_temperature": best.cfg.calibration_temperature,
            "labels": self.labels,
            "train_examples": len(self.seqs),
            "dev_examples": len(self.dev_seqs),
        }


def discriminative_scale(net) -> dict[int, float]:
    """{id(param): learning-rate factor}: the head 1, LSTM layer i of n 2.6^-(n-i), the embedding lowest."""
    scale = {id(p): 1.0 for p in net.parameters()}
    depth = len(net.lstms)
    for i, lstm in enumerate(net.lstms):
        for p in lstm.parameters():
            scale[id(p)] = ULMFIT_DECAY ** -(depth - i)
    for p in net.embed.parameters():
        scale[id(p)] = ULMFIT_DECAY ** -(depth + 1)
    return scale


def _pairs_hash(pairs, dev_pairs) -> str:
    blob = json.dumps([pairs, dev_pairs], ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(blob).hexdigest()[:16]


def train_classifier(
    data: list[str],
    out: str | Path,
    *,
    dev: list[str] | None = None,
    init: str | None = None,
    model: dict | None = None,
    train: TrainConfig | None = None,
    callback: Callback | None = None,
    label_map: dict[str, str] | None = None,
    balance: bool = False,
    vectors: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    encoding: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    strict: bool = False,
) -> dict:
    """Train a classification head (and encoder) on labelled files; select the best half-epoch on dev.

    Args:
        data: labelled files (TSV/CSV with label and text columns, or JSON Lines).
        out: run directory to create (or to continue with ``resume``).
        dev: labelled files for selection and calibration; default: a seeded ``val_fraction`` of ``data``.
        init: a language model or a classifier to start from (a run, a model file or a built-in name): its
            tokenizer and encoder, with ULMFiT-style discriminative learning rates and gradual unfreezing. An
            LM head is kept, so the result still generates; a classifier's head is kept when its labels are the
            same, in the same order. Word vectors from a classifier stay fixed.
        model: ModelConfig fields for a model trained from scratch, over ``config.classifier_model()``.
        train: the training configuration; default ``config.classifier_train()`` (the CLI's defaults).
        callback: receives ("start" | "step" | "eval" | "warning" | "end", info) events.
        label_map: renames or merges labels of ``data`` and ``dev`` ({old: new}); a label of ``data`` it leaves
            out stays a class of its own, with a notice (``strict``: an error).
        balance: weight each class's loss by the inverse of its share of ``data`` (so a rare class, such as
            SST's neutral sentences beside its many polar phrases, is still predicted), and select the best
            evaluation on dev macro-F1 instead of accuracy.
        vectors: pretrained word vectors (GloVe, word2vec or fastText text format, ``.gz`` too) for a word
            tokenizer: ``data.vectors.vector_vocabulary`` builds the vocabulary; rows found in the vectors
            start from them and stay fixed, except the ``tune_vectors`` most frequent words' (TrainConfig).
        text_column, label_column, encoding: how to read ``data`` and ``dev`` (``data.labelled.read_labelled``).
        resume: continue the interrupted run in ``out``: its saved inputs and configuration, with the stopping
            rules, patience and device of ``train`` (``loop.resume_config``; other changes are refused).
        overwrite: replace a run already in ``out`` (its model, resume state and metrics log).
        strict: a label of ``data`` that ``label_map`` leaves unmapped is an error instead of a notice.

    Without a batch size (0, the default) or a stopping rule, both are fitted to the data
    (``config.fit_classifier``): a small file gets smaller batches and enough epochs to learn.
    """
    check_model({**classifier_model(), **(model or {})}, classifier=True)  # before any data is read
    out = Path(out)
    cfg = train or classifier_train()
    tensors = saved = tokenizer = None
    if resume:
        check_out_dir(out, resume=True, overwrite=overwrite)
        tensors, saved, tokenizer = read_resume(out / RESUME_FILE)  # read once: configs, tensors, tokenizer
        if saved.get("task") != "classifier":
            raise LstmTextError(
                f"{{resume}}: {out} is not a classifier run; continue a language-model run as a language model",
                param="resume",
            )
        data, dev, init, vectors = saved["data"], saved["dev"], saved["init"], saved.get("vectors")
        label_map, balance = saved["label_map"], saved["balance"]
        text_column, label_column = saved.get("text_column", "text"), saved.get("label_column", "label")
        encoding = saved.get("encoding")
        cfg = resume_config(saved, train or classifier_train(), classifier_train(), model or {}, classifier_model())
    if vectors and init:
        raise LstmTextError("{vectors} and {init} both give the encoder its embeddings; choose one", param="vectors")
    if vectors and cfg.tokenizer != "word":
        raise LstmTextError(
            "{vectors} needs word tokens: use {tokenizer} word (the default with {vectors})", param="tokenizer"
        )
    rt = Runtime.from_env(cfg.device, cfg.precision)
    cb = rt.main_only(callback)
    read = {"text_column": text_column, "label_column": label_column, "encoding": encoding}
    pairs, dev_pairs, labels = _read_data(data, dev, read, label_map, strict, cfg, None if resume else cb)
    if saved is not None and saved["data_hash"] != _pairs_hash(pairs, dev_pairs):
        raise LstmTextError("{resume}: the labelled data differs from the data this run was started on", param="resume")
    cfg = fit_classifier(cfg, len(pairs))  # a resumed run's are settled already
    if not resume and rt.is_main:
        check_out_dir(out, resume=False, overwrite=overwrite)
    torch.manual_seed(cfg.seed)
    net, tokenizer, trained_rows = _build_model(saved, tokenizer, init, vectors, pairs, labels, model, cfg, cb)
    net = net.to(rt.device)
    if init and tokenizer.kind == "word":
        # word vectors from --init stay as they are: a word the new data never shows keeps its meaning, and
        # a step's gradient skips the (V, E) table
        net.embed.weight.requires_grad_(False)
    unfreeze = [p for n, p in net.named_parameters() if not n.startswith("cls_head.") and p.requires_grad]
    if vectors:
        net.train_only_rows(trained_rows)  # the pretrained rows stay as they are
    inputs: dict[str, object] = {"data": [str(d) for d in data], "dev": [str(d) for d in dev or []], "init": init}
    inputs |= {"label_map": label_map or {}, "balance": balance, "vectors": vectors} | read
    trainer = _build_trainer(
        net,
        tokenizer,
        pairs,
        dev_pairs,
        labels,
        cfg,
        rt,
        out=out,
        inputs=inputs,
        unfreeze=unfreeze if init else [],
        trained_rows=trained_rows,
        saved=saved,
        callback=cb,
    )
    if saved is not None and tensors is not None:
        trainer.restore(tensors, saved)
    summary = trainer.run()
    close_run(rt, out)
    return summary


def _read_data(data, dev, read: dict, label_map, strict: bool, cfg: TrainConfig, cb: Callback | None):
    """(training pairs, dev pairs, labels): the labelled files read and mapped; without ``dev``, a seeded
    ``val_fraction`` of the data. ``cb``: where a label ``label_map`` leaves unmapped is reported (None: not
    reported, as on resume)."""
    from ..data.labelled import check_labels, map_labels, read_labelled, unmapped_labels

    raw = read_labelled(data, **read)
    if label_map and (left := unmapped_labels(raw, label_map)):
        which = f"{', '.join(left[:8])}{' ...' if len(left) > 8 else ''}"
        if strict:
            raise LstmTextError(
                f"{{label_map}} leaves {which} unmapped; map every label of the data (or drop {{strict}} to keep them "
                "as classes)",
                param="label_map",
            )
        if cb:
            what = f"{{label_map}} leaves {which} unmapped: each stays a class of its own"
            cb("notice", notice(what + " ({strict} makes this an error)"))
    pairs = map_labels(raw, label_map or {}, check=True)
    labels = check_labels(pairs)
    if dev:
        dev_pairs = map_labels(read_labelled(dev, **read), label_map or {})
    else:
        rng = random.Random(cfg.seed)
        pairs = pairs[:]
        rng.shuffle(pairs)
        n_dev = max(1, int(len(pairs) * cfg.val_fraction))
        pairs, dev_pairs = pairs[n_dev:], pairs[:n_dev]
    unknown = sorted({lab for _, lab in dev_pairs} - set(labels))
    if unknown:
        raise LstmTextError(f"the dev data has labels the training data lacks: {', '.join(unknown[:5])}")
    return pairs, dev_pairs, labels


def _build_model(saved, tokenizer, init, vectors, pairs, labels: list[str], model: dict | None, cfg: TrainConfig, cb):
    """(model, tokenizer, trained rows) on the CPU, one of three ways: a resumed run's (its weights come with
    ``Trainer.restore``), from ``--init``, or from scratch (with ``vectors``: its embedding from them)."""
    if saved is not None:
        return LSTMModel(ModelConfig.from_dict(saved["model"])), tokenizer, saved.get("trained_rows", 0)
    if init:
        return *_model_from_init(init, labels, model), 0
    return _model_from_scratch(pairs, labels, model, cfg, vectors, cb)


def _model_from_init(init: str, labels: list[str], model: dict | None):
    """(model, tokenizer) from --init: its tokenizer and encoder, a head for ``labels`` (kept when the model
    already classifies these labels, in this order; an LM head is kept too)."""
    from ..checkpoint import load_model
    from ..model import LSTMModel

    base, tokenizer, _ = load_model(init)
    if not (base.cfg.lm_head or base.cfg.labels):
        raise LstmTextError(f"{{init}} {init} has neither a language-model nor a classification head", param="init")
    dropout = (model or {}).get("dropout", base.cfg.dropout)
    net = LSTMModel(ModelConfig.from_dict({**base.cfg.to_dict(), "labels": labels, "dropout": dropout}))
    state = base.state_dict()
    if base.cfg.labels != labels:  # a classifier of other labels lends its encoder; the head starts anew
        state = {k: v for k, v in state.items() if not k.startswith("cls_head.")}
    net.load_state_dict(state, strict=False)
    return net, tokenizer


def _model_from_scratch(pairs, labels: list[str], model: dict | None, cfg: TrainConfig, vectors: str | None, cb):
    """(model, tokenizer, trained rows) for a new run: a tokenizer trained on the data, or with ``vectors`` a
    word vocabulary from them (``_init_vectors``); the model's fields over ``classifier_model()``."""
    from ..model import LSTMModel
    from ..tokenizer import train_tokenizer

    text, wv, trained_rows = "\n".join(t for t, _ in pairs), None, 0
    if vectors:
        from ..data.vectors import read_vectors

        wv = read_vectors(vectors)
        tokenizer, trained_rows = _vector_vocabulary(text, wv, cfg)
    else:
        tokenizer = train_tokenizer(text, cfg.tokenizer, cfg.vocab_size, _norm_version(cfg))
        if cut := vocab_cut(tokenizer, cfg, "data"):
            cb("notice", cut)
    fields = {**classifier_model(), **(model or {})} | ({"embed": wv.dim} if wv else {})
    net = LSTMModel(
        ModelConfig.from_dict({**fields, "vocab_size": tokenizer.vocab_size, "labels": labels, "lm_head": False})
    )
    if wv is not None:
        _init_vectors(net, wv, tokenizer, cfg.seed)
    return net, tokenizer, trained_rows


def _vector_vocabulary(text: str, wv, cfg: TrainConfig):
    """(word tokenizer, trained rows): the data's words that the vectors hold (``vector_vocabulary``); the rows
    below ``trained rows`` (padding, unknown and the ``tune_vectors`` most frequent words) train."""
    from ..data.vectors import vector_vocabulary
    from ..tokenizer import WordTokenizer, normalizer

    norm = normalizer(_norm_version(cfg))
    words, trained = vector_vocabulary(
        (norm(text) if norm else text).split(),
        wv,
        max_words=cfg.vocab_size - 2 if cfg.vocab_size else None,
        max_vectors=CLASSIFIER.max_vectors,
        tune=cfg.tune_vectors,
    )
    return WordTokenizer(words, _norm_version(cfg)), 2 + trained


def _init_vectors(net, wv, tokenizer, seed: int) -> None:
    """The embedding from the vectors; the data's words the vectors lack (e.g. "n't") start random, with the
    vectors' spread."""
    from ..data.vectors import embedding_init

    emb, _ = embedding_init(wv, tokenizer.pieces(), wv.dim, scale=float(wv.matrix.std()) * 3**0.5, seed=seed)
    emb[0] = 0.0  # padding
    with torch.no_grad():
        net.embed.weight.copy_(torch.from_numpy(emb))


def _build_trainer(
    net,
    tokenizer,
    pairs,
    dev_pairs,
    labels: list[str],
    cfg: TrainConfig,
    rt: Runtime,
    *,
    out: Path,
    inputs: dict,
    unfreeze: list,
    trained_rows: int,
    saved: dict | None,
    callback: Callback,
) -> Trainer:
    """The task on the encoded data, the optimiser (discriminative learning rates from --init) and the loop,
    with the run state a resume rebuilds the run from."""
    from ..infer.classifier import encode_lines

    rows = rt.global_rows(cfg.batch_size, saved)
    lab_id = {lab: i for i, lab in enumerate(labels)}
    task = ClassifierTask(
        encode_lines(tokenizer, [t for t, _ in pairs], cfg.max_len),
        torch.tensor([lab_id[lab] for _, lab in pairs]),
        encode_lines(tokenizer, [t for t, _ in dev_pairs]),
        np.array([lab_id[lab] for _, lab in dev_pairs]),
        labels,
        cfg,
        balance=inputs["balance"],
        unfreeze=unfreeze,
        inputs=inputs,
        rows=rows,
        rt=rt,
    )
    opt = make_optimizer(net, cfg, discriminative_scale(net) if inputs["init"] else None)
    run_state = {
        "task": "classifier",
        **inputs,
        "data_hash": _pairs_hash(pairs, dev_pairs),
        "trained_rows": trained_rows,
        "rows": rows,
        "model": net.cfg.to_dict(),
        "train": cfg.to_dict(),
    }
    return Trainer(
        task, net, opt, cfg, out=out, tokenizer=tokenizer, runtime=rt, run_state=run_state, callback=callback
    )


def _norm_version(cfg: TrainConfig) -> str:
    """The normalisation version a new tokenizer records ("" when off)."""
    if not cfg.normalize:
        return ""
    from ..normalize import NORMALIZER

    return NORMALIZER

"""``train`` and ``train-classifier``: parse the options, build the configs, call the trainer, render the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import CLASSIFIER, ModelConfig, TrainConfig
from .options import (
    KEEP_RESUME_HELP,
    OVERWRITE_HELP,
    RESUME_HELP,
    Device,
    Precision,
    TokenizerKind,
    _default,
    _given,
    _rank,
)


def train(
    corpus: Annotated[
        list[str],
        typer.Argument(
            help="Text files (.gz read as text), folders, quoted globs such as 'data/*.txt', or a dataset name "
            "such as tinyshakespeare.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run directory to create (or to continue with --resume).")
    ] = ...,
    tokenizer: Annotated[
        TokenizerKind | None,
        typer.Option(help="char, or SentencePiece bpe/unigram." + _default(TrainConfig, "tokenizer")),
    ] = None,
    tokenizer_sample: Annotated[
        int | None,
        typer.Option(
            help="Bytes of a bigger corpus that SentencePiece trains on (a seeded sample)."
            + _default(TrainConfig, "tokenizer_sample")
        ),
    ] = None,
    vocab_size: Annotated[
        int | None,
        typer.Option(help="Vocabulary size (char: 0 keeps every character)." + _default(TrainConfig, "vocab_size")),
    ] = None,
    layers: Annotated[int | None, typer.Option(help="Stacked LSTM layers." + _default(ModelConfig, "layers"))] = None,
    hidden: Annotated[int | None, typer.Option(help="LSTM units per layer." + _default(ModelConfig, "hidden"))] = None,
    embed: Annotated[int | None, typer.Option(help="Embedding width." + _default(ModelConfig, "embed"))] = None,
    dropout: Annotated[
        float | None,
        typer.Option(help="Locked dropout between layers and before the head." + _default(ModelConfig, "dropout")),
    ] = None,
    embed_dropout: Annotated[
        float | None,
        typer.Option(help="Drop whole embedding rows (AWD-LSTM)." + _default(ModelConfig, "embed_dropout")),
    ] = None,
    tie_weights: Annotated[
        bool | None,
        typer.Option(
            "--tie-weights/--no-tie-weights",
            help="Share embedding and output weights." + _default(ModelConfig, "tie_weights"),
        ),
    ] = None,
    val_fraction: Annotated[
        float | None,
        typer.Option(help="Last fraction of each file used to validate." + _default(TrainConfig, "val_fraction")),
    ] = None,
    val_tokens: Annotated[
        int | None,
        typer.Option(
            help="Validate on a fixed sample this big of a larger validation split ('lstm-text evaluate' gives the "
            "whole split)." + _default(TrainConfig, "val_tokens")
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Parallel streams per step, per process." + _default(TrainConfig, "batch_size")),
    ] = None,
    seq_len: Annotated[
        int | None, typer.Option(help="Truncated BPTT length in tokens." + _default(TrainConfig, "seq_len"))
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (AdamW)." + _default(TrainConfig, "lr"))] = None,
    warmup: Annotated[
        int | None,
        typer.Option(help="Linear warm-up steps (at most a tenth of the run)." + _default(TrainConfig, "warmup")),
    ] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="AdamW weight decay." + _default(TrainConfig, "weight_decay"))
    ] = None,
    grad_clip: Annotated[
        float | None, typer.Option(help="Clip the gradient norm to this (0: off)." + _default(TrainConfig, "grad_clip"))
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Stop after this many passes over the data.")] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(
            help="Wall-clock seconds for the whole run, validation and saving included. Without any stopping rule: 300."
        ),
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many validations without a better val bpc (0: off)."
            + _default(TrainConfig, "patience")
        ),
    ] = None,
    eval_interval: Annotated[
        int | None,
        typer.Option(help="Steps between validations (default: quarters)." + _default(TrainConfig, "eval_interval")),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed." + _default(TrainConfig, "seed"))] = None,
    device: Annotated[Device | None, typer.Option(help="Where to train." + _default(TrainConfig, "device"))] = None,
    precision: Annotated[
        Precision | None,
        typer.Option(
            help="auto: bf16 autocast on CUDA (fp16 with loss scaling where bf16 is missing), fp32 on CPU."
            + _default(TrainConfig, "precision")
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help=RESUME_HELP)] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP)] = False,
    keep_resume: Annotated[
        bool | None, typer.Option("--keep-resume/--no-keep-resume", help=KEEP_RESUME_HELP, show_default=False)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
):
    """Train a language model on a text corpus; writes a self-contained run directory.

    The corpus is tokenized once into cached token files (LSTM_TEXT_CACHE, default ~/.cache/lstm-text), so
    corpora larger than memory train and a second run starts at once. Under torchrun
    (torchrun --nproc-per-node N -m lstm_text train ...) the processes train one model together.
    """
    from ..config import lm_train
    from ..training.lm import train_lm
    from ..ui import TrainProgress, train_summary

    if not corpus and not resume:
        raise typer.BadParameter("give a text file or a dataset name (e.g. tinyshakespeare)", param_hint="CORPUS")
    tcfg = _given(
        tokenizer=tokenizer,
        tokenizer_sample=tokenizer_sample,
        vocab_size=vocab_size,
        val_fraction=val_fraction,
        val_tokens=val_tokens,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        warmup=warmup,
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        max_steps=max_steps,
        epochs=epochs,
        time_budget=time_budget,
        patience=patience,
        eval_interval=eval_interval,
        seed=seed,
        device=device,
        precision=precision,
        keep_resume=keep_resume,
    )
    mcfg = _given(
        layers=layers, hidden=hidden, embed=embed, dropout=dropout, embed_dropout=embed_dropout, tie_weights=tie_weights
    )
    quiet = quiet or _rank() != 0  # under torchrun, rank 0 alone reports
    ModelConfig(vocab_size=2, **mcfg)  # validate the model flags before reading any data
    summary = train_lm(
        corpus or [],
        out,
        model=mcfg,
        train=lm_train(resume, **tcfg),
        callback=TrainProgress(quiet),
        resume=resume,
        overwrite=overwrite,
    )
    if not quiet:
        train_summary(out, summary)


def train_classifier(
    data: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Labelled files: TSV/CSV with label and text columns, or JSON Lines with text and label keys.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run directory to create (or to continue with --resume).")
    ] = ...,
    dev: Annotated[
        list[Path] | None,
        typer.Option(
            help="Labelled dev file(s) for selection and calibration (default: a seeded --val-fraction of DATA)."
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="Start from this language model's or classifier's encoder and tokenizer (a run, a model file or "
            "a built-in name such as sentiment)."
        ),
    ] = None,
    vectors: Annotated[
        Path | None,
        typer.Option(
            help="Pretrained word vectors (GloVe, word2vec or fastText text format; .gz too): word tokens, "
            "--embed set to their width, found rows kept frozen so unseen words keep their meaning.",
            show_default=False,
        ),
    ] = None,
    tune_vectors: Annotated[
        int,
        typer.Option(
            help="With --vectors: DATA's N most frequent words keep training their rows (the rest stay fixed)."
        ),
    ] = 0,
    tokenizer: Annotated[
        TokenizerKind | None,
        typer.Option(
            help=f"Tokenizer trained on DATA (without --init) \\[default: {CLASSIFIER.tokenizer}; word with --vectors]",
            show_default=False,
        ),
    ] = None,
    normalize: Annotated[
        bool,
        typer.Option(
            "--normalize/--no-normalize",
            help="Read raw text like tokenized text: lower case, clitics split, emoji and emoticons as words, "
            "HTML and URLs cleaned (stored in the model).",
        ),
    ] = CLASSIFIER.normalize,
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary size.")] = CLASSIFIER.vocab_size,
    layers: Annotated[int, typer.Option(help="Stacked LSTM layers.")] = CLASSIFIER.layers,
    hidden: Annotated[int, typer.Option(help="LSTM units per layer and direction.")] = CLASSIFIER.hidden,
    embed: Annotated[int, typer.Option(help="Embedding width.")] = CLASSIFIER.embed,
    dropout: Annotated[float, typer.Option(help="Dropout on the encoder and before the head.")] = CLASSIFIER.dropout,
    embed_dropout: Annotated[float, typer.Option(help="Drop whole embedding rows.")] = CLASSIFIER.embed_dropout,
    bidirectional: Annotated[
        bool | None,
        typer.Option(
            "--bidirectional/--no-bidirectional",
            help="Read lines in both directions (default from scratch; a model from --init reads left to right).",
            show_default=False,
        ),
    ] = None,
    val_fraction: Annotated[float, typer.Option(help="Held-out share of DATA when no --dev is given.")] = 0.1,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=f"Lines per step \\[default: {CLASSIFIER.batch_size}; a file of fewer than "
            f"{CLASSIFIER.batch_size * CLASSIFIER.steps_per_epoch} lines: lines / {CLASSIFIER.steps_per_epoch}, "
            f"at least {CLASSIFIER.min_batch}]",
            show_default=False,
        ),
    ] = None,
    max_len: Annotated[
        int, typer.Option(help="Cut longer training lines to this many tokens: their first quarter and last three.")
    ] = TrainConfig.max_len,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = CLASSIFIER.lr,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.01,
    grad_clip: Annotated[float, typer.Option(help="Clip the gradient norm to this (0: off).")] = 1.0,
    warmup: Annotated[int, typer.Option(help="Linear warm-up steps (at most a tenth of the run).")] = CLASSIFIER.warmup,
    epochs: Annotated[
        float | None,
        typer.Option(
            help=f"Passes over DATA \\[default without other limits: {CLASSIFIER.epochs:g}, or enough for "
            f"{CLASSIFIER.min_steps} steps on a small file]",
            show_default=False,
        ),
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Wall-clock seconds for the whole run, validation and saving included.")
    ] = None,
    patience: Annotated[
        int,
        typer.Option(
            help="Stop after this many validations (two per epoch) without a better dev score, counted once the "
            "warm-up is over (0: off)."
        ),
    ] = CLASSIFIER.patience,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    label_map: Annotated[
        str | None,
        typer.Option(
            help="Rename or merge labels: 'very negative=negative,very positive=positive'. A label it leaves out "
            "stays a class of its own, with a notice."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="A label of DATA that --label-map leaves unmapped is an error.")
    ] = False,
    balance: Annotated[
        bool,
        typer.Option(
            "--balance",
            help="Weight each class by the inverse of its share of DATA, and select on dev macro-F1: for a rare"
            " class that must still be predicted (e.g. neutral).",
        ),
    ] = False,
    text_column: Annotated[str, typer.Option(help="Name of the text column (CSV/TSV) or key (JSON Lines).")] = "text",
    label_column: Annotated[str, typer.Option(help="Name of the label column or key.")] = "label",
    encoding: Annotated[
        str | None,
        typer.Option(help="Encoding of the labelled files, e.g. latin-1 \\[default: UTF-8, or UTF-16 with a BOM]"),
    ] = None,
    resume: Annotated[bool, typer.Option(help=RESUME_HELP)] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP)] = False,
    keep_resume: Annotated[
        bool, typer.Option("--keep-resume/--no-keep-resume", help=KEEP_RESUME_HELP, show_default=False)
    ] = TrainConfig.keep_resume,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
):
    """Train a sentiment (or any label) classifier on labelled lines."""
    from ..config import ModelConfig, classifier_model, classifier_train
    from ..data.labelled import parse_label_map
    from ..training.classifier import train_classifier as run
    from ..ui import TrainProgress, train_summary

    quiet = quiet or _rank() != 0  # under torchrun, rank 0 alone reports

    if not data and not resume:
        raise typer.BadParameter("give one or more labelled files", param_hint="DATA")
    if init and bidirectional:
        raise typer.BadParameter(
            "the encoder comes from --init, its reading direction too; drop --bidirectional",
            param_hint="--bidirectional",
        )
    kind = tokenizer.value if tokenizer else ("word" if vectors else CLASSIFIER.tokenizer)
    tcfg = classifier_train(
        tokenizer=kind,
        normalize=normalize,
        vocab_size=vocab_size,
        val_fraction=val_fraction,
        max_len=max_len,
        tune_vectors=tune_vectors,
        lr=lr,
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        warmup=warmup,
        patience=patience,
        seed=seed,
        device=device.value,
        keep_resume=keep_resume,
        **_given(batch_size=batch_size, epochs=epochs, max_steps=max_steps, time_budget=time_budget),
    )
    mcfg = classifier_model(
        layers=layers,
        hidden=hidden,
        embed=embed,
        dropout=dropout,
        embed_dropout=embed_dropout,
        bidirectional=not init if bidirectional is None else bidirectional,
    )
    ModelConfig(vocab_size=2, labels=["a", "b"], **mcfg)
    if vectors is not None and not vectors.is_file():
        raise typer.BadParameter(f"no such file: {vectors}", param_hint="--vectors")
    s = run(
        [str(d) for d in data or []],
        out,
        dev=[str(d) for d in dev or []] or None,
        init=init,
        model=mcfg,
        train=tcfg,
        callback=TrainProgress(quiet, *(("dev_macro_f1", "dev F1") if balance else ("dev_accuracy", "dev acc"))),
        label_map=parse_label_map(label_map),
        balance=balance,
        vectors=str(vectors) if vectors else None,
        text_column=text_column,
        label_column=label_column,
        encoding=encoding,
        resume=resume,
        overwrite=overwrite,
        strict=strict,
    )
    if not quiet:
        train_summary(out, s, classifier=True)

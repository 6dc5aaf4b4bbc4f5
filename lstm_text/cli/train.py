"""``train`` and ``train-classifier``: parse the options, build the configs, call the trainer, render the summary.

Each option's default and help come from its config field (``options.option``); ``train`` leaves out what the
command line does not give (a resumed run keeps its own values), ``train-classifier`` starts from
``config.CLASSIFIER``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import (
    CLASSIFIER,
    LM_TIME_BUDGET,
    Device,
    ModelConfig,
    Precision,
    TokenizerKind,
    TrainConfig,
    classifier_model,
    classifier_train,
    help_of,
    lm_train,
)
from ..data.labelled import parse_label_map
from .options import KEEP_RESUME_HELP, OVERWRITE_HELP, REQUIRED, RESUME_HELP, _given, _rank, flag, option

OUT_HELP = "Run directory to create (or to continue with --resume)."


def train(
    corpus: Annotated[
        list[str] | None,
        typer.Argument(
            help="Text files (.gz read as text), folders, quoted globs such as 'data/*.txt', or a dataset name "
            "such as tinyshakespeare.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help=OUT_HELP)] = REQUIRED,
    tokenizer: TokenizerKind | None = option(TrainConfig, "tokenizer", given=True),
    tokenizer_sample: int | None = option(TrainConfig, "tokenizer_sample", given=True),
    vocab_size: int | None = option(TrainConfig, "vocab_size", given=True),
    layers: int | None = option(ModelConfig, "layers", given=True),
    hidden: int | None = option(ModelConfig, "hidden", given=True),
    embed: int | None = option(ModelConfig, "embed", given=True),
    dropout: float | None = option(ModelConfig, "dropout", given=True),
    embed_dropout: float | None = option(ModelConfig, "embed_dropout", given=True),
    tie_weights: bool | None = option(ModelConfig, "tie_weights", "--tie-weights/--no-tie-weights", given=True),
    val_fraction: float | None = option(TrainConfig, "val_fraction", given=True),
    val_tokens: int | None = option(TrainConfig, "val_tokens", given=True),
    batch_size: int | None = option(TrainConfig, "batch_size", given=True),
    seq_len: int | None = option(TrainConfig, "seq_len", given=True),
    lr: float | None = option(TrainConfig, "lr", given=True),
    warmup: int | None = option(TrainConfig, "warmup", given=True),
    weight_decay: float | None = option(TrainConfig, "weight_decay", given=True),
    grad_clip: float | None = option(TrainConfig, "grad_clip", given=True),
    max_steps: int | None = option(TrainConfig, "max_steps", given=True, show=False),
    epochs: float | None = option(TrainConfig, "epochs", given=True, show=False),
    time_budget: float | None = option(
        TrainConfig,
        "time_budget",
        help=f"{help_of(TrainConfig, 'time_budget', flag)} Without any stopping rule: {LM_TIME_BUDGET:g}.",
        given=True,
        show=False,
    ),
    patience: int | None = option(TrainConfig, "patience", given=True),
    eval_interval: int | None = option(TrainConfig, "eval_interval", given=True),
    seed: int | None = option(TrainConfig, "seed", given=True),
    device: Device | None = option(TrainConfig, "device", given=True),
    precision: Precision | None = option(TrainConfig, "precision", given=True),
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
    summary = train_lm(
        corpus or [],
        out,
        model=mcfg,
        train=lm_train(resume, **tcfg),
        callback=TrainProgress(quiet, name=flag),
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
    out: Annotated[Path, typer.Option("--out", "-o", help=OUT_HELP)] = REQUIRED,
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
    tune_vectors: int = option(TrainConfig, "tune_vectors"),
    tokenizer: TokenizerKind | None = option(
        TrainConfig,
        "tokenizer",
        help=f"Tokenizer trained on DATA (without --init) \\[default: {CLASSIFIER.tokenizer}; word with --vectors]",
        default=None,
        show_default=False,
    ),
    normalize: bool = option(TrainConfig, "normalize", "--normalize/--no-normalize", default=CLASSIFIER.normalize),
    vocab_size: int = option(
        TrainConfig, "vocab_size", help="Tokenizer vocabulary size.", default=CLASSIFIER.vocab_size
    ),
    layers: int = option(ModelConfig, "layers", default=CLASSIFIER.layers),
    hidden: int = option(ModelConfig, "hidden", help="LSTM units per layer and direction.", default=CLASSIFIER.hidden),
    embed: int = option(ModelConfig, "embed", default=CLASSIFIER.embed),
    dropout: float = option(
        ModelConfig, "dropout", help="Dropout on the encoder and before the head.", default=CLASSIFIER.dropout
    ),
    embed_dropout: float = option(
        ModelConfig, "embed_dropout", help="Drop whole embedding rows.", default=CLASSIFIER.embed_dropout
    ),
    bidirectional: bool | None = option(
        ModelConfig, "bidirectional", "--bidirectional/--no-bidirectional", default=None, show_default=False
    ),
    val_fraction: float = option(TrainConfig, "val_fraction", help="Held-out share of DATA when no --dev is given."),
    batch_size: int | None = option(
        TrainConfig,
        "batch_size",
        help=f"Lines per step \\[default: {CLASSIFIER.batch_size}; a file of fewer than "
        f"{CLASSIFIER.batch_size * CLASSIFIER.steps_per_epoch} lines: lines / {CLASSIFIER.steps_per_epoch}, "
        f"at least {CLASSIFIER.min_batch}]",
        default=None,
        show_default=False,
    ),
    max_len: int = option(TrainConfig, "max_len"),
    lr: float = option(TrainConfig, "lr", default=CLASSIFIER.lr),
    weight_decay: float = option(TrainConfig, "weight_decay"),
    grad_clip: float = option(TrainConfig, "grad_clip"),
    warmup: int = option(TrainConfig, "warmup", default=CLASSIFIER.warmup),
    epochs: float | None = option(
        TrainConfig,
        "epochs",
        help=f"Passes over DATA \\[default without other limits: {CLASSIFIER.epochs:g}, or enough for "
        f"{CLASSIFIER.min_steps} steps on a small file]",
        default=None,
        show_default=False,
    ),
    max_steps: int | None = option(TrainConfig, "max_steps", default=None),
    time_budget: float | None = option(TrainConfig, "time_budget", default=None),
    patience: int = option(
        TrainConfig,
        "patience",
        help="Stop after this many validations (two per epoch) without a better dev score, counted once the "
        "warm-up is over (0: off).",
        default=CLASSIFIER.patience,
    ),
    seed: int = option(TrainConfig, "seed"),
    device: Device = option(TrainConfig, "device"),
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
    keep_resume: bool = option(
        TrainConfig, "keep_resume", "--keep-resume/--no-keep-resume", help=KEEP_RESUME_HELP, show_default=False
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
):
    """Train a sentiment (or any label) classifier on labelled lines."""
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
    if vectors is not None and not vectors.is_file():
        raise typer.BadParameter(f"no such file: {vectors}", param_hint="--vectors")
    s = run(
        [str(d) for d in data or []],
        out,
        dev=[str(d) for d in dev or []] or None,
        init=init,
        model=mcfg,
        train=tcfg,
        callback=TrainProgress(
            quiet, *(("dev_macro_f1", "dev F1") if balance else ("dev_accuracy", "dev acc")), name=flag
        ),
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

"""The command line: thin Typer commands that parse, build a config, call the library once and render.

The only module that imports typer. Errors the user can fix become one line on stderr and exit 1
(usage errors exit 2); never a traceback (set LSTM_TEXT_DEBUG=1 to see one).
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

# NumPy's OpenBLAS would spin threads of its own under classify's parallel batches (measured: 40% slower)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer  # noqa: E402

from .config import CLASSIFIER, SAMPLING_RANGE, TOP_P_MIN, ModelConfig, TrainConfig  # noqa: E402  (stdlib only: --help stays instant)

app = typer.Typer(
    name="lstm-text",
    help="Train LSTM language models on your text, generate from a prompt, classify sentiment.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class TokenizerKind(str, Enum):
    char = "char"
    bpe = "bpe"
    unigram = "unigram"
    word = "word"


class Quantize(str, Enum):
    none = "none"
    int8 = "int8"


def _q(q: Quantize) -> str:
    return "" if q == Quantize.none else q.value


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def _rank() -> int:
    """This process's rank under torchrun (0 otherwise)."""
    return int(os.environ.get("RANK", "0") or 0)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Sentiment(str, Enum):
    positive = "positive"
    negative = "negative"


def _version(value: bool) -> None:
    if value:
        from . import __version__

        try:  # the fused cell of classify (setup.py), built at install when a C compiler is there
            from .infer import _cell

            cell = f"compiled LSTM cell: in use ({Path(_cell.__file__).name})"
        except ImportError:
            cell = (
                "compiled LSTM cell: not built (no C compiler at install): classify runs the same steps in NumPy, "
                "about half as fast; reinstall with a C compiler to build it"
            )
        print(f"lstm-text {__version__}\n{cell}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version, and whether the compiled cell is in use.",
        ),
    ] = False,
) -> None:
    """Train LSTM language models on your text, generate from a prompt, classify sentiment."""


def _default(cls, name: str) -> str:
    """ " [default: X]" for a help text whose option defaults to None (so a resumed run keeps its own value)."""
    import dataclasses

    v = next(f.default for f in dataclasses.fields(cls) if f.name == name)
    return f" \\[default: {str(v).lower() if isinstance(v, bool) else v}]"  # \\[: not Rich markup


RESUME_HELP = (
    "Continue the interrupted run in --out. Stopping rules given now (--max-steps, --epochs, --time-budget) replace "
    "the run's; --patience, --eval-interval, --device and --keep-resume may change too; other options may not."
)
OVERWRITE_HELP = "Replace the run already in --out (its model, resume state and metrics log)."
KEEP_RESUME_HELP = (
    "Keep resume.safetensors (3x the model) after the run finishes, so --resume can extend it; "
    "--no-keep-resume removes it at the end." + _default(TrainConfig, "keep_resume")
)


def _given(**kw) -> dict:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in kw.items() if v is not None}


@app.command()
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
    from .config import lm_train
    from .training.lm import train_lm
    from .ui import TrainProgress, flag, train_summary

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
        callback=TrainProgress(quiet, name=flag),
        resume=resume,
        overwrite=overwrite,
    )
    if not quiet:
        train_summary(out, summary)


def _read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    from .data import read_text

    if prompt is not None and prompt_file is not None:
        raise typer.BadParameter("give PROMPT or --prompt-file, not both", param_hint="--prompt-file")
    if prompt_file is not None:
        if str(prompt_file) == "-":
            return sys.stdin.read()
        return read_text(prompt_file)
    if prompt == "-":
        return sys.stdin.read()
    return prompt or ""


_SAMPLING = "[{:g}, {:g}]".format(*SAMPLING_RANGE)


@app.command()
def generate(
    model: Annotated[str, typer.Argument(help="Run directory or model file.")],
    prompt: Annotated[str | None, typer.Argument(help="Text to continue ('-': stdin).")] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from this file ('-': stdin).")] = None,
    max_tokens: Annotated[int, typer.Option(help="New tokens per sample.")] = 500,
    temperature: Annotated[float, typer.Option(help=f"Sampling temperature in {_SAMPLING}.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Sample from the k most likely tokens (0: all).")] = 0,
    top_p: Annotated[float, typer.Option(help=f"Nucleus sampling mass in [{TOP_P_MIN:g}, 1].")] = 1.0,
    min_p: Annotated[float, typer.Option(help="Drop tokens below min-p x the top probability.")] = 0.0,
    repetition_penalty: Annotated[
        float,
        typer.Option(help=f"Penalise tokens already seen (1: off), in {_SAMPLING}."),
    ] = 1.0,
    stop: Annotated[list[str] | None, typer.Option(help="End a sample at this string (repeatable).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same text.")] = None,
    num_samples: Annotated[int, typer.Option(help="Samples to draw (as one batch).")] = 1,
    greedy: Annotated[bool, typer.Option(help="Always take the most likely token.")] = False,
    quantize: Annotated[
        Quantize, typer.Option(help="int8: int8 weights for the per-token steps (CPU only; faster on larger models).")
    ] = Quantize.none,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.cpu,
    sentiment: Annotated[
        Sentiment | None,
        typer.Option(
            help="Steer towards this class of --classifier (FUDGE: the top candidates reweighted).", show_default=False
        ),
    ] = None,
    classifier: Annotated[
        str | None, typer.Option(help="Classifier that steers --sentiment \\[default: sentiment]", show_default=False)
    ] = None,
    strength: Annotated[
        float | None,
        typer.Option(help="Weight of the classifier's log-probability (0-100) \\[default: 4]", show_default=False),
    ] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="A prompt loop keeping the LSTM state across turns (/help).")
    ] = False,
):
    """Generate text from a prompt; streams to stdout as it is produced."""
    import lstm_text

    from .config import GenerateConfig
    from .ui import warn

    text = _read_prompt(prompt, prompt_file)
    opts = dict(
        max_tokens=max_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        stop=stop or [],
        seed=seed,
        greedy=greedy,
    )
    GenerateConfig(**opts)  # validate options before loading the model
    if num_samples < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--num-samples")
    if sentiment is None and not interactive and (classifier is not None or strength is not None):
        raise typer.BadParameter("--classifier and --strength steer --sentiment; give --sentiment too")
    if interactive and num_samples != 1:
        raise typer.BadParameter("an interactive session draws one sample per turn", param_hint="--num-samples")
    if interactive and "-" in (prompt, str(prompt_file)):
        raise typer.BadParameter("an interactive session reads its turns from stdin; give the prompt as text")
    steering = dict(sentiment=sentiment and sentiment.value, classifier=classifier or "sentiment", strength=strength)
    if strength is not None:
        from .infer.steer import check_strength

        check_strength(strength)
    m = lstm_text.load(model, device.value, _q(quantize))
    if interactive:
        _repl(m.session(**steering, **opts), text)
        return
    from .infer.generate import MAX_PROMPT_CHARS

    if len(text) > MAX_PROMPT_CHARS:
        warn(f"the prompt has {len(text):,} characters; the model reads its last {MAX_PROMPT_CHARS:,}")
    unknown = m.unknown_chars(text[-MAX_PROMPT_CHARS:])
    if unknown:
        warn(
            f"the prompt has {len(unknown)} character(s) this model never saw in training "
            f"({''.join(sorted(unknown))[:20]!r}); they become the unknown token"
        )
    w = sys.stdout
    if num_samples == 1:
        pieces = m.stream(text, **steering, **opts)  # checks the steering before the prompt is written
        w.write(text)
        w.flush()
        for piece in pieces:
            w.write(piece)
            w.flush()
        w.write("\n")
    else:
        for i, sample in enumerate(m.generate(text, num_samples=num_samples, **steering, **opts)):
            if i:
                w.write("\n" + "-" * 40 + "\n")
            w.write(text + sample + "\n")
    w.flush()


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Run directory or model file.")],
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Text file to measure [default: a language model's whole validation split, from the token cache]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    quantize: Annotated[Quantize, typer.Option(help="int8: measure the int8 inference path instead.")] = Quantize.none,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.cpu,
    text_column: Annotated[
        str | None, typer.Option(help="Text column or key of a labelled file \\[default: the model's training one]")
    ] = None,
    label_column: Annotated[str | None, typer.Option(help="Label column or key of a labelled file.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Encoding of a labelled file \\[default: UTF-8, or UTF-16 with a BOM]")
    ] = None,
):
    """Measure a model on a file: bits per character for a language model; accuracy, macro-F1, confusion
    matrix and calibration error for a classifier on a labelled file."""
    import lstm_text

    from .data.labelled import is_labelled_name
    from .ui import classification_report, lm_report, out

    m = lstm_text.load(model, device.value, _q(quantize))
    if file is None:
        if not m.has_lm:
            raise typer.BadParameter("a classifier needs a labelled file to measure", param_hint="FILE")
        r = m.evaluate_validation()
        if as_json:
            print(json.dumps(r))
        else:
            lm_report(out(), r, r["split"])
        return
    labelled = m.labels and (not m.has_lm or is_labelled_name(file))
    cols = {"text_column": text_column, "label_column": label_column, "encoding": encoding}
    r = m.evaluate_labelled(file, **cols) if labelled else m.evaluate_file(file)
    if as_json:
        print(json.dumps(r))
    else:
        (classification_report if labelled else lm_report)(out(), r, str(file))


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="Run directory, model file or built-in model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Show a model's heads, configuration, parameter count, tokenizer and training summary."""
    import lstm_text

    from .ui import info_table, out

    d = lstm_text.load(model).info()
    if as_json:
        print(json.dumps(d))
    else:
        table = info_table(f"lstm-text model {model}", d)
        curve = _validation_curve(d["path"])
        if curve:
            table.add_row(*curve)
        out().print(table)


class ExportFormat(str, Enum):
    onnx = "onnx"


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="Run directory, model file or built-in model name.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write (an earlier export there is replaced).")
    ] = ...,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="onnx: graphs for onnxruntime and other ONNX runtimes.")
    ] = ExportFormat.onnx,
    quantize: Annotated[
        Quantize, typer.Option(help="int8: int8 weights (onnxruntime's dynamic quantization; smaller, may differ).")
    ] = Quantize.none,
    check: Annotated[
        bool, typer.Option(help="Run the export with onnxruntime beside lstm-text's own paths; show the differences.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print export.json (and the check) as JSON.")] = False,
):
    """Export a model for other runtimes: ONNX graphs (a language model's steps with its LSTM state as inputs and
    outputs; a classifier's probabilities), the tokenizer as data, and export.json describing them.

    Needs the export extra: pip install 'lstm-text\\[export]'."""
    import lstm_text

    from .ui import out

    manifest = lstm_text.load(model).export(out_dir, format=fmt.value, quantize=_q(quantize), check=check)
    if as_json:
        print(json.dumps(manifest))
        return
    console = out()
    files = sorted(p.name for p in out_dir.iterdir())
    console.print(f"wrote {out_dir}: {', '.join(files)}", markup=False, highlight=False)
    for name, diff in manifest.get("check", {}).items():
        what = {"lm_logits": "language-model logits", "classifier_probs": "class probabilities"}[name]
        console.print(f"onnxruntime vs lstm-text, largest |difference| of {what}: {diff:.2e}", highlight=False)


def _validation_curve(model_file: str | None) -> tuple[str, str] | None:
    """(name, sparkline and first -> last value) of the validations of the run a model file lies in, if any."""
    from .errors import LstmTextError
    from .plot import metrics_path, read_metrics, validation_key
    from .ui import sparkline

    if not model_file or metrics_path(model_file) is None:
        return None
    try:
        records = read_metrics(model_file)
        key = validation_key(records)
    except LstmTextError:
        return None
    vals = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    name = {"val_bpc": "val bpc"}.get(key, key.replace("_", " "))
    return f"training: {name} curve", f"{sparkline(vals)}  {vals[0]:.4f} -> {vals[-1]:.4f} ({len(vals)} validations)"


class OutFormat(str, Enum):
    text = "text"
    tsv = "tsv"
    jsonl = "jsonl"


@app.command("train-classifier")
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
    from .config import ModelConfig, classifier_model, classifier_train
    from .data.labelled import parse_label_map
    from .training.classifier import train_classifier as run
    from .ui import TrainProgress, flag, train_summary

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


@app.command()
def classify(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Input files, one text per line ('-' or none: stdin).")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Classifier run directory, model file or built-in name.")
    ] = "sentiment",
    fmt: Annotated[
        OutFormat, typer.Option("--format", "-f", help="text, tsv (label, score, text) or jsonl.")
    ] = OutFormat.text,
    batch_size: Annotated[int, typer.Option(help="Lines per batch.")] = 512,
    threshold: Annotated[float, typer.Option(help="Below this top probability, answer --abstain-label.")] = 0.0,
    abstain_label: Annotated[str, typer.Option(help="Label for answers under --threshold.")] = "neutral",
    explain: Annotated[
        bool,
        typer.Option(
            help="Show which words drove each decision: coloured on a terminal, else a last column of word:weight."
        ),
    ] = False,
    quantize: Annotated[
        Quantize, typer.Option(help="int8: hold the lookup table in int8 (4x less memory).")
    ] = Quantize.none,
):
    """Classify the sentiment of each input line: exactly one output line per input line, in order.

    An empty (or blank) line gets an empty label and score in text and tsv output, null in jsonl.

    Runs on the CPU without torch (NumPy), so it starts fast."""
    import lstm_text

    from .data import read_lines
    from .infer.classifier import classify_stream, score_text
    from .infer.classifier import explain as explain_words

    if batch_size < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--batch-size")
    if not 0.0 <= threshold < 1.0:
        raise typer.BadParameter("must be in [0, 1)", param_hint="--threshold")
    m = lstm_text.load(model, quantize=_q(quantize))
    if not m.labels:
        raise typer.BadParameter(
            f"{model} is a language model without a classification head; train one with 'lstm-text train-classifier'",
            param_hint="--model",
        )
    console = None
    shown = str  # piped: the text as it came
    if fmt != OutFormat.jsonl and sys.stdout.isatty():  # a terminal: input text cannot drive it
        from .ui import out, visible

        shown = visible
        if explain and fmt == OutFormat.text:  # coloured words; piped: a fourth column
            console = out()
    w = sys.stdout
    clf = m.classifier
    for text, r in classify_stream(
        clf, m.tokenizer, read_lines(files or []), batch_size=batch_size, threshold=threshold, abstain=abstain_label
    ):
        weights = explain_words(clf, m.tokenizer, text) if explain and r["label"] is not None else []
        if fmt == OutFormat.jsonl:
            d = {"text": text, **r}
            if explain:
                d["explain"] = [[t, round(v, 4)] for t, v in weights]
            w.write(json.dumps(d, ensure_ascii=False) + "\n")
        elif console is not None:
            from .ui import explained

            console.print(explained(r, weights, text))
        else:
            if r["label"] is None:  # an empty line: empty label and score in every format (jsonl: null)
                line = f"\t\t{shown(text)}"
            elif fmt == OutFormat.tsv:
                line = f"{r['label']}\t{r['score']:.4f}\t{shown(text)}"
            else:
                line = f"{r['label']}\t{score_text(r)}\t{shown(text)}"
            if explain:  # each word with how much it moved the answer's probability
                line += "\t" + " ".join(f"{shown(word)}:{v:+.3f}" for word, v in weights)
            w.write(line + "\n")
    w.flush()


@app.command()
def bench(
    lm: Annotated[
        str | None, typer.Option(help="Time this language model's sizes (default: the default config).")
    ] = None,
    classifier: Annotated[str, typer.Option(help="Classifier to time ('' to skip).")] = "sentiment",
    lines: Annotated[Path | None, typer.Option(help="File of lines to classify (default: synthetic SST-like).")] = None,
    quick: Annotated[bool, typer.Option(help="Tiny counts: a smoke check, figures are noise.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
):
    """Measure this machine: GEMM GFLOP/s, training and generation speed as ratios of it, classification lines/s."""
    import lstm_text

    from . import bench as b
    from .data import read_text
    from .ui import bench_report, out, warn

    cfg = lstm_text.load(lm).cfg if lm else None
    clf = None
    if classifier:
        try:
            clf = lstm_text.load(classifier)
        except lstm_text.LstmTextError as e:
            warn(f"classification not timed: {e}")
    texts = read_text(lines).splitlines() if lines else None
    r = b.run(cfg=cfg, quick=quick, classifier=clf, lines=texts)
    if as_json:
        print(json.dumps(r))
    else:
        bench_report(out(), r)


from .serve.limits import Limits as _ServeLimits  # noqa: E402  (stdlib only: the defaults of serve's options)


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command()
def serve(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to serve: run directories, model files or built-in names \\[default: sentiment]. A request"
            " names one by its built-in name, its run directory's basename, or a model file's directory name"
            " (model.safetensors) or stem; NAME=PATH gives it a name of your own.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface; use --api-key).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="LSTM_TEXT_API_KEY",
            help="Require 'Authorization: Bearer KEY' on every request but /healthz.",
            show_default=False,
        ),
    ] = None,
    max_body: Annotated[int, typer.Option(help="Bytes per request body (413 above).")] = _ServeLimits.max_body,
    max_texts: Annotated[int, typer.Option(help="Texts per classify request (422 above).")] = _ServeLimits.max_texts,
    max_chars: Annotated[int, typer.Option(help="Characters per text or prompt (422 above).")] = _ServeLimits.max_chars,
    max_label: Annotated[
        int, typer.Option(help="Characters of abstain_label, which every result repeats (422 above).")
    ] = _ServeLimits.max_label,
    max_tokens: Annotated[
        int, typer.Option(help="max_tokens a request may ask for (422 above).")
    ] = _ServeLimits.max_tokens,
    max_n: Annotated[int, typer.Option(help="Samples per completions request, prompts x n.")] = _ServeLimits.max_n,
    max_stop_chars: Annotated[
        int, typer.Option(help="Characters of a request's stop strings, all together (422 above).")
    ] = _ServeLimits.max_stop_chars,
    workers: Annotated[
        int, typer.Option(help="Generations stepped at once, as one batch per model; more wait in the queue.")
    ] = _ServeLimits.workers,
    max_queue: Annotated[
        int, typer.Option(help="Requests waiting per kind (classify, generate); more: 503 with Retry-After.")
    ] = _ServeLimits.max_queue,
    batch_wait_ms: Annotated[
        float, typer.Option(help="How long a classify batch waits for more requests after its first.")
    ] = _ServeLimits.batch_wait_ms,
    drain_timeout: Annotated[
        float, typer.Option(help="Seconds SIGTERM waits for requests in flight before cancelling them.")
    ] = _ServeLimits.drain_timeout,
    limit_concurrency: Annotated[
        int, typer.Option(help="Open connections; one more is answered 503 and closed at once.")
    ] = _ServeLimits.limit_concurrency,
    request_timeout: Annotated[
        float, typer.Option(help="Seconds a request has to arrive whole, head and body; then 408 and closed.")
    ] = _ServeLimits.request_timeout,
    quantize: Annotated[Quantize, typer.Option(help="int8: int8 weights (CPU; see generate and classify).")] = (
        Quantize.none
    ),
    chat_template: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="TOML file of how /v1/chat/completions writes a conversation as text (default: User:/Assistant:"
            " turns; see the README).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn's log level (info logs each request).")] = LogLevel.info,
):
    """Serve models over a local HTTP API: POST /v1/classify, /v1/generate (server-sent events with stream),
    OpenAI-compatible /v1/completions and /v1/chat/completions; GET / (a page to try them), /v1/models, /healthz,
    /metrics (Prometheus), /docs.

    Needs the serve extra (pip install 'lstm-text\\[serve]'). SIGTERM finishes the requests in flight, then exits 0."""
    from .errors import LstmTextError

    try:
        import fastapi  # noqa: F401
        import swagger_ui_bundle  # noqa: F401  (/docs without the internet)
        import uvicorn  # noqa: F401
    except ImportError:
        raise LstmTextError("serve needs the serve extra: pip install 'lstm-text[serve]'") from None
    from .serve.server import load_models, run

    limits = _ServeLimits(
        max_body=max_body,
        max_texts=max_texts,
        max_chars=max_chars,
        max_label=max_label,
        max_tokens=max_tokens,
        max_n=max_n,
        max_stop_chars=max_stop_chars,
        workers=workers,
        max_queue=max_queue,
        batch_wait_ms=batch_wait_ms,
        drain_timeout=drain_timeout,
        limit_concurrency=limit_concurrency,
        request_timeout=request_timeout,
    )
    from .serve.chat import ChatTemplate

    template = ChatTemplate.load(chat_template) if chat_template else None
    served = load_models(models, _q(quantize))
    run(served, host=host, port=port, limits=limits, api_key=api_key, log_level=log_level.value, chat=template)


HISTORY_LINES = 1000  # turns of `generate --interactive` kept across sessions


class _History:
    """readline's history of the prompt loop, kept in ``path`` across sessions."""

    def __init__(self, readline, path: Path):
        self.readline, self.path = readline, path
        readline.set_auto_history(False)  # added here, so piped-in test turns and typed ones alike are kept
        readline.set_history_length(HISTORY_LINES)
        try:
            readline.read_history_file(str(path))
        except OSError:  # none yet, or unreadable: start empty
            pass

    def add(self, line: str) -> None:
        self.readline.add_history(line)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(str(self.path))
        except OSError:  # a read-only home: editing still works, the history is not kept
            pass


def history_path() -> Path:
    """Where `generate --interactive` keeps its history: LSTM_TEXT_HISTORY, else the user's cache folder."""
    env = os.environ.get("LSTM_TEXT_HISTORY")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstm-text" / "generate_history"


def _line_editing() -> _History | None:
    """Line editing (arrows, Home/End, Ctrl-R) and history for input() on a terminal: readline, where Python
    has it (not on Windows, whose console edits lines itself)."""
    try:
        import readline
    except ImportError:
        return None
    return _History(readline, history_path())


def _repl(session, first: str) -> None:
    """``generate --interactive``: read turns from stdin until /quit or end of input; each reply streams to
    stdout, command replies and errors go to stderr."""
    from .errors import LstmTextError
    from .ui import error

    tty = sys.stdin.isatty()
    history = _line_editing() if tty else None
    if tty:
        sys.stderr.write("type text and the model continues it; /help lists the commands, /quit ends\n")
    w = sys.stdout

    def reply(text: str) -> None:
        try:
            for piece in session.turn(text):
                w.write(piece)
                w.flush()
        except KeyboardInterrupt:  # Ctrl-C ends this reply, not the session
            pass
        w.write("\n")  # display only: the model's text runs on where the reply stopped
        w.flush()

    if first:
        w.write(first)
        reply(first)
    while True:
        try:
            line = input("> " if tty else "")
        except EOFError:
            break
        if history and line.strip():
            history.add(line)
        if not line.startswith("/"):
            reply(line)
            continue
        try:
            msg = session.command(line)
        except LstmTextError as e:
            error(str(e))
            continue
        if msg is None:
            break
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


class Gate(str, Enum):
    cell = "cell"
    hidden = "hidden"
    input = "input"
    forget = "forget"
    output = "output"


def _writable(path: Path | None, hint: str) -> None:
    if path is not None and not path.parent.is_dir():
        raise typer.BadParameter(f"no such directory: {path.parent}", param_hint=hint)


@app.command("inspect")
def inspect_cmd(
    model: Annotated[str, typer.Argument(help="Run directory or model file (a left-to-right LSTM).")],
    text: Annotated[str | None, typer.Argument(help="Text to read ('-': stdin).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the text from this file ('-': stdin).")] = None,
    cell: Annotated[
        int | None, typer.Option(help="Colour the text by this cell (0-based) instead of by surprisal.")
    ] = None,
    layer: Annotated[
        int | None,
        typer.Option(help="Layer (0-based) of --cell (default: the top one); with --find, rank this layer only."),
    ] = None,
    gate: Annotated[
        Gate, typer.Option(help="What a cell shows: its cell state, hidden state, or input/forget/output gate.")
    ] = Gate.cell,
    find: Annotated[
        str | None,
        typer.Option(
            help="Rank cells by |correlation| with a signal of the text: quote, line-position, bracket-depth, "
            "word-start, or a REGEX (1 inside its matches, multiline).",
            show_default=False,
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="Cells --find lists.")] = 10,
    memory: Annotated[
        bool, typer.Option("--memory", help="Histogram of the cells' memory, tau = -1 / ln(mean forget gate).")
    ] = False,
    memory_png: Annotated[
        Path | None, typer.Option(help="Write the memory histogram to this PNG (needs the plot extra).")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Write one self-contained HTML page: selectable cell/gate/layer, values on hover."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every array as JSON (for notebooks).")] = False,
    untrained: Annotated[
        bool, typer.Option("--untrained", help="Inspect MODEL's configuration at its seeded initialisation instead.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the --untrained initialisation.")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Read at most this many tokens of the text.")] = 20_000,
):
    """Show what the LSTM does on a text: every layer's gates, cell and hidden state and the surprisal of each token.

    The text is coloured by surprisal, by one --cell, or by the cell that tracks a --find signal best."""
    import numpy as np

    import lstm_text

    from . import inspect as ins
    from .ui import err, find_table, inspect_text, memory_table, out, warn

    if top < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--top")
    if max_tokens < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--max-tokens")
    _writable(html, "--html")
    _writable(memory_png, "--memory-png")
    source = _read_prompt(text, file)
    m = lstm_text.load(model)
    trace = m.inspect(source, max_tokens=max_tokens, untrained=untrained, seed=seed)
    L, T, H = trace.shape
    if T == max_tokens and len(m.tokenizer.encode(source)) > max_tokens:
        warn(f"the text is longer than --max-tokens {max_tokens:,}: its first {max_tokens:,} tokens are inspected")
    if layer is not None:
        ins.check_cell(trace, layer, 0)
    found = ins.find(trace, find, gate.value, top, layer) if find else None
    chosen = cell is not None
    if chosen:
        layer = L - 1 if layer is None else layer
        ins.check_cell(trace, layer, cell)
    elif found:
        layer, cell = found["top"][0]["layer"], found["top"][0]["cell"]
    layer = L - 1 if layer is None else layer
    if cell is None and trace.surprisal is None and not (as_json or memory or html or memory_png):
        raise typer.BadParameter("this model has no language-model head, so no surprisal: choose a --cell")
    tau = ins.time_constants(trace)
    if html is not None:
        from .inspect_page import MAX_TOKENS as PAGE_TOKENS
        from .inspect_page import page

        start = gate.value if cell is not None or trace.surprisal is None else "surprisal"
        title = f"lstm-text inspect {model}" + (" (untrained)" if untrained else "")
        html.write_text(page(trace, title=title, found=found, layer=layer, cell=cell or 0, quantity=start), "utf-8")
        note = f" (its first {PAGE_TOKENS:,} tokens)" if T > PAGE_TOKENS else ""
        err.print(f"wrote {html}{note}", markup=False)
    if memory_png is not None:
        from .plot import memory_png as write_png

        what = "untrained " if untrained else ""
        write_png(tau, memory_png, ins.MEMORY_EDGES, f"memory of {what}{model} over {T:,} tokens")
        err.print(f"wrote {memory_png}", markup=False)
    if as_json:
        print(json.dumps(ins.to_json(trace, found)))
        return
    console = out()
    if found:
        console.print(find_table(found, f"cells whose {gate.value} tracks {find!r} (Pearson r over {T:,} tokens)"))
    if memory:
        median = float(np.median(tau))  # inf sorts last: a median over all cells
        title = f"memory of {L * H:,} cells over {T:,} tokens (median tau {median:.1f})"
        console.print(memory_table(ins.memory_histogram(tau), ins.MEMORY_EDGES, title))
    if not chosen and (memory or html or memory_png):
        return  # the text view comes with --cell, or when nothing else was asked for
    if cell is None:
        s = trace.surprisal
        console.print(inspect_text(trace.tokens, s, signed=False, scale=8.0))
        mean = float(s[1:].mean()) if T > 1 else float("nan")
        err.print(f"surprisal: white 0 bits, red 8+ bits; mean {mean:.3f} bits per token", markup=False)
        return
    v = trace.values[gate.value][layer, :, cell]
    signed = gate.value in ("cell", "hidden")
    scale = max(float(abs(v).max()), 1e-6) if signed else 1.0
    console.print(inspect_text(trace.tokens, v, signed=signed, scale=scale))
    how = f"blue -{scale:.2f}, white 0, red +{scale:.2f}" if signed else "white 0, red 1"
    err.print(f"layer {layer} cell {cell} {gate.value}: {how}", markup=False)


@app.command()
def plot(
    runs: Annotated[list[str], typer.Argument(help="Run directories (their metrics.jsonl).", show_default=False)],
    out_png: Annotated[Path, typer.Option("--out", "-o", help="Image to write (PNG).")] = ...,
):
    """Plot training curves: train loss and validation bpc against steps and wall time, runs overlaid."""
    from .plot import curves_png, read_metrics
    from .ui import err

    _writable(out_png, "--out")
    names = [Path(r).resolve().name for r in runs]
    labels = [n if names.count(n) == 1 else str(r) for n, r in zip(names, runs)]
    curves_png({label: read_metrics(r) for label, r in zip(labels, runs)}, out_png)
    err.print(f"wrote {out_png}", markup=False)


def _full_option_names() -> None:
    """--help never cuts an option's name (``--tokenizer-sa…`` at 80 columns): the name columns of Typer's
    options tables do not wrap, so only the help text column narrows on a small terminal."""
    from rich.table import Table
    from typer import rich_utils

    if getattr(rich_utils.Table, "full_names", False):
        return

    class OptionsTable(Table):
        full_names = True

        def add_row(self, *cells, **kw) -> None:
            new = not self.columns  # the options table's columns come with its first row; the commands' before
            for part in getattr(cells[-1], "renderables", ()) if cells else ():
                if getattr(part, "overflow", "") is None:  # a word too long for the help column (an example) folds
                    part.overflow = "fold"
            super().add_row(*cells, **kw)
            if new:
                for column in self.columns[:-2]:  # the names: not the type (it folds) nor the help text
                    column.no_wrap = True

    rich_utils.Table = OptionsTable


def _param_names(args: list[str]):
    """How this command line says a library parameter: the running command's own option (``out`` -> ``--out``,
    a positional argument by its metavar), else ``ui.flag``'s ``--name``."""
    from typer.main import get_command

    from .ui import flag

    command = getattr(get_command(app), "commands", {}).get(args[0]) if args else None
    said = {}
    for p in getattr(command, "params", ()):
        if p.param_type_name == "argument":
            said[p.name] = p.human_readable_name
        else:
            said[p.name] = max(p.opts, key=len)  # --out, not -o
    return lambda name: said.get(name, flag(name))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn every expected failure into one line on stderr."""
    try:  # typer >= 0.22 vendors click; older releases depend on it
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover
        import click.exceptions as click

    from .errors import LstmTextError
    from .ui import error

    args = sys.argv[1:] if argv is None else argv
    if not args or {"-h", "--help"} & set(args):
        _full_option_names()
    try:
        rv = app(args=argv, prog_name="lstm-text", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.NoArgsIsHelpError:  # `lstm-text` alone: the help was shown
        return 0
    except click.UsageError as e:
        hint = f" (see 'lstm-text {e.ctx.info_name} --help')" if e.ctx and e.ctx.parent else ""
        error(f"{e.format_message()}{hint}")
        return 2
    except click.ClickException as e:
        error(e.format_message())
        return e.exit_code
    except typer.Abort:
        error("interrupted")
        return 130
    except LstmTextError as e:
        if _rank() == 0 or e.exit_code < 128:  # under torchrun, one line per stop signal, from rank 0
            msg = e.render(_param_names(args))
            error(msg if _rank() == 0 else f"rank {_rank()}: {msg}")
        return e.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # the reader went away (e.g. `| head`): not an error
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:  # the environment's fault (no space left, read-only, a missing device): one line
        if os.environ.get("LSTM_TEXT_DEBUG"):
            raise
        error(f"{e.strerror or e}: {e.filename}" if e.filename else f"{e.strerror or e}")
        return 1
    except MemoryError:
        error("out of memory; try a smaller --batch-size or model")
        return 1
    except Exception as e:  # a bug: still one line, with the way to get the traceback
        if os.environ.get("LSTM_TEXT_DEBUG"):
            raise
        error(f"internal error: {type(e).__name__}: {e} (set LSTM_TEXT_DEBUG=1 for the traceback)")
        return 3

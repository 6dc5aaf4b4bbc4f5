"""Small dataclass configs for the model, training and generation (stdlib only).

Each is validated in ``__post_init__``, so a bad value fails before any work starts. A field that is also an
option (``option_field``) carries its help text, and its choices where it has some: the command line's options
(``cli.options.option``) and the HTTP schemas (``serve.schemas``) derive from the fields, so that each option's
default, choices and help live here once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from enum import Enum
from typing import Any

from .errors import LstmTextError, render


# the choices of an option: the command line shows and checks them (Typer reads a str Enum), the configs hold and
# check their values (the tuples below)
class TokenizerKind(str, Enum):
    char = "char"
    bpe = "bpe"
    unigram = "unigram"
    word = "word"  # classifiers with word vectors


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"  # and cuda:N, which the command line does not offer
    mps = "mps"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


TOKENIZERS = tuple(t.value for t in TokenizerKind)
DEVICES = tuple(d.value for d in Device)
PRECISIONS = tuple(p.value for p in Precision)
SAMPLING_RANGE = (1e-3, 1e3)  # temperature and repetition penalty: logits (at most ~1e2) stay far below float32's max
TOP_P_MIN = 1e-6
_SAMPLING = "[{:g}, {:g}]".format(*SAMPLING_RANGE)


def option_field(default, help: str, *, choices: tuple[str, ...] | None = None):
    """A field that is also an option: ``help`` is what ``--help`` and the HTTP schema say of it (``{name}``
    stands for another option: ``--name`` on the command line, ``name`` elsewhere, as in error messages)."""
    meta = {"help": help, **({"choices": choices} if choices else {})}
    if isinstance(default, list):
        return field(default_factory=list, metadata=meta)
    return field(default=default, metadata=meta)


def _field(cls, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def default_of(cls, name: str):
    """The default of field ``name`` of the config class ``cls``."""
    f = _field(cls, name)
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def help_of(cls, name: str, say: Callable[[str], str] = str) -> str:
    """The help text of option ``name`` of ``cls``, each parameter it names said by ``say`` (``--top-p``)."""
    return render(_field(cls, name).metadata["help"], say)


def choices_of(cls, name: str) -> tuple[str, ...]:
    """The values option ``name`` of ``cls`` may take."""
    return _field(cls, name).metadata["choices"]


def _check(cond: bool, msg: str, param: str | None = None) -> None:
    if not cond:
        raise LstmTextError(msg, param)


def _finite(cfg) -> None:
    """Every float option is a finite number: ``inf`` and ``nan`` pass most range checks (``inf > 0``) and then
    turn into inf or nan in the tensors (float("inf") from the CLI, Infinity or 1e39 from JSON)."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise LstmTextError(f"{{{f.name}}} must be a finite number, got {v}", f.name)


@dataclass
class ModelConfig:
    vocab_size: int  # tokenizer size, pad and unknown ids included
    # token embedding width; equals the LM head's input width when weights are tied
    embed: int = option_field(256, "Embedding width.")
    hidden: int = option_field(512, "LSTM units per layer.")  # per direction
    # 1 (the "vanilla" LSTM) learns fastest in a 2-core, 5-minute budget
    layers: int = option_field(1, "Stacked LSTM layers.")
    dropout: float = option_field(0.0, "Locked dropout between layers and before the head.")  # before the heads
    # a word dropped everywhere, AWD-LSTM (Merity et al. 2017)
    embed_dropout: float = option_field(0.0, "Drop whole embedding rows (AWD-LSTM).")
    # the embedding and output matrix shared (Press & Wolf 2017): fewer params, better bpc
    tie_weights: bool = option_field(True, "Share embedding and output weights.")
    # only for classifiers: an LM cannot look ahead
    bidirectional: bool = option_field(
        False, "Read lines in both directions (default from scratch; a model from {init} reads left to right)."
    )
    lm_head: bool = True  # next-token prediction head
    labels: list[str] = field(default_factory=list)  # classification head over these labels; empty: none
    calibration_temperature: float = 1.0  # divides class logits: fitted on dev after training (Guo et al. 2017)

    def __post_init__(self) -> None:
        _finite(self)
        _check(self.vocab_size >= 2, "vocab size must be at least 2")
        _check(self.embed >= 1, "{embed} must be a positive integer", "embed")
        _check(self.hidden >= 1, "{hidden} must be a positive integer", "hidden")
        _check(1 <= self.layers <= 16, "{layers} must be between 1 and 16", "layers")
        for name in ("dropout", "embed_dropout"):
            v = getattr(self, name)
            _check(0.0 <= v < 1.0, f"{{{name}}} must be in [0, 1), got {v}", name)
        _check(not (self.bidirectional and self.lm_head), "{bidirectional} is only for classifiers", "bidirectional")
        _check(self.lm_head or len(self.labels) >= 2, "a model needs an LM head or at least two labels")
        n = len(self.labels)
        _check(n <= MAX_LABELS, f"a classifier has at most {MAX_LABELS:,} labels, got {n:,}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = {RENAMED.get(k, k): v for k, v in d.items()}  # model files written before a field's rename
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def check_model(fields: dict, classifier: bool = False) -> None:
    """Check ModelConfig ``fields`` before any data is read (the vocabulary and the labels come from it)."""
    ModelConfig(**{"vocab_size": 2, **({"labels": ["a", "b"]} if classifier else {}), **fields})


# validation keeps (N, C) probabilities and a C x C confusion matrix: 10,000 labels took 3 GB for 20,000 rows
MAX_LABELS = 1000
RENAMED = {"temperature": "calibration_temperature"}  # old ModelConfig field -> its name now


@dataclass
class TrainConfig:
    tokenizer: str = option_field("char", "char, or SentencePiece bpe/unigram.", choices=TOKENIZERS)
    # 0: every character (char) or word (word), or 2048 pieces (bpe/unigram)
    vocab_size: int = option_field(0, "Vocabulary size (char: 0 keeps every character).")
    # classifiers: read raw and tokenized text alike (normalize.py); never for an LM
    normalize: bool = option_field(
        False,
        "Read raw text like tokenized text: lower case, clitics split, emoji and emoticons as words, HTML and URLs "
        "cleaned (stored in the model).",
    )
    # the last part of each file, contiguous, never trained on
    val_fraction: float = option_field(0.1, "Last fraction of each file used to validate.")
    # validation reads a fixed seeded sample this big of a larger split (~2 s at 512 units)
    val_tokens: int = option_field(
        250_000,
        "Validate on a fixed sample this big of a larger validation split ('lstm-text evaluate' gives the whole "
        "split).",
    )
    tokenizer_sample: int = option_field(
        16_000_000, "Bytes of a bigger corpus that SentencePiece trains on (a seeded sample)."
    )
    # parallel streams (B); on a CPU budget, more updates beat bigger batches. Classifiers: 0 fits the data
    # (``classifier_batch``), so that a small file still gets enough steps per epoch
    batch_size: int = option_field(32, "Parallel streams per step, per process.")
    # truncated BPTT length (T); state is carried across windows, so context is longer
    seq_len: int = option_field(64, "Truncated BPTT length in tokens.")
    # classifiers: a longer training line keeps its head and tail (infer.classifier.cut)
    max_len: int = option_field(
        400, "Cut longer training lines to this many tokens: their first quarter and last three."
    )
    # classifiers with vectors: the data's N most frequent words train their vector rows
    tune_vectors: int = option_field(
        0, "With {vectors}: DATA's N most frequent words keep training their rows (the rest stay fixed)."
    )
    # 3e-3: 2.37 bpc, 1e-2: 2.25, 2e-2: 2.38 at 120 s, 2x256
    lr: float = option_field(1e-2, "Peak learning rate (AdamW).")
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    # at most WARMUP_SHARE of the run (a short run still reaches its lr)
    warmup: int = option_field(20, "Linear warm-up steps (at most a tenth of the run).")
    weight_decay: float = option_field(0.01, "AdamW weight decay.")
    # max global gradient norm (exploding gradients, Pascanu et al. 2013)
    grad_clip: float = option_field(1.0, "Clip the gradient norm to this (0: off).")
    # the stopping rules (STOPPING_RULES), 0: off each
    max_steps: int = option_field(0, "Stop after this many steps.")
    epochs: float = option_field(0.0, "Stop after this many passes over the data.")
    time_budget: float = option_field(0.0, "Wall-clock seconds for the whole run, validation and saving included.")
    # validations in a row without a better selection metric
    patience: int = option_field(0, "Stop after this many validations without a better val bpc (0: off).")
    # 0: about every 30 s or 1/10 of the run
    eval_interval: int = option_field(0, "Steps between validations (default: quarters).")
    seed: int = option_field(0, "Random seed.")
    device: str = option_field("auto", "Where to train.", choices=DEVICES)
    precision: str = option_field(
        "auto",
        "auto: bf16 autocast on CUDA (fp16 with loss scaling where bf16 is missing), fp32 on CPU.",
        choices=PRECISIONS,
    )
    # resume.safetensors is 3x the model
    keep_resume: bool = option_field(
        True, "Keep resume.safetensors (3x the model) after the run finishes, so {resume} can extend it."
    )

    def __post_init__(self) -> None:
        _finite(self)
        _check(
            self.tokenizer in TOKENIZERS,
            "{tokenizer} must be char, bpe, unigram or word",
            "tokenizer",
        )
        _check(self.val_tokens >= 1000, "{val_tokens} must be at least 1000", "val_tokens")
        _check(self.tokenizer_sample >= 1 << 16, "{tokenizer_sample} must be at least 65536 bytes", "tokenizer_sample")
        _check(
            self.precision in PRECISIONS,
            "{precision} must be auto, fp32, bf16 or fp16",
            "precision",
        )
        _check(self.vocab_size >= 0, "{vocab_size} must be >= 0", "vocab_size")
        _check(
            self.tokenizer == "char" or self.vocab_size == 0 or self.vocab_size >= 16,
            "{vocab_size} must be at least 16 for bpe/unigram",
            "vocab_size",
        )
        _check(0.0 < self.val_fraction < 1.0, "{val_fraction} must be in (0, 1)", "val_fraction")
        _check(self.batch_size >= 0, "{batch_size} must be a positive integer", "batch_size")
        _check(self.seq_len >= 2, "{seq_len} must be at least 2", "seq_len")
        _check(self.max_len >= 4, "{max_len} must be at least 4", "max_len")
        _check(self.tune_vectors >= 0, "{tune_vectors} must be >= 0", "tune_vectors")
        _check(self.lr > 0, "{lr} must be positive", "lr")
        _check(0.0 <= self.min_lr_ratio <= 1.0, "{min_lr_ratio} must be in [0, 1]", "min_lr_ratio")
        _check(self.warmup >= 0, "{warmup} must be >= 0", "warmup")
        _check(self.weight_decay >= 0, "{weight_decay} must be >= 0", "weight_decay")
        _check(self.grad_clip >= 0, "{grad_clip} must be >= 0 (0 disables clipping)", "grad_clip")
        _check(self.max_steps >= 0, "{max_steps} must be >= 0", "max_steps")
        _check(self.epochs >= 0, "{epochs} must be >= 0", "epochs")
        _check(self.time_budget >= 0, "{time_budget} must be >= 0", "time_budget")
        _check(self.patience >= 0, "{patience} must be >= 0 (0: off)", "patience")
        _check(self.eval_interval >= 0, "{eval_interval} must be >= 0", "eval_interval")
        _check(
            self.device in DEVICES or self.device.startswith("cuda:"),
            "{device} must be auto, cpu, cuda or mps",
            "device",
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class GenerateConfig:
    max_tokens: int = option_field(500, "New tokens per sample.")
    temperature: float = option_field(1.0, f"Sampling temperature in {_SAMPLING}.")  # < 1 sharper, > 1 flatter
    top_k: int = option_field(0, "Sample from the k most likely tokens (0: all).")
    top_p: float = option_field(1.0, f"Nucleus sampling mass in [{TOP_P_MIN:g}, 1].")  # Holtzman et al. 2020
    min_p: float = option_field(0.0, "Drop tokens below min-p x the top probability.")
    # CTRL-style (Keskar et al. 2019) penalty on seen tokens
    repetition_penalty: float = option_field(1.0, f"Penalise tokens already seen (1: off), in {_SAMPLING}.")
    stop: list[str] = option_field([], "End the text at the first of these strings.")
    seed: int | None = option_field(None, "Random seed: same seed, same text.")
    greedy: bool = option_field(False, "Always take the most likely token.")

    def __post_init__(self) -> None:
        _finite(self)
        _check(self.max_tokens >= 0, "{max_tokens} must be >= 0", "max_tokens")
        # logits (N, V) are float32: a temperature or penalty past these bounds divides them into inf, and a
        # top_p under float32's smallest numbers rounds to 0, so that every token is dropped (nan probabilities)
        lo, hi = SAMPLING_RANGE
        _check(
            lo <= self.temperature <= hi,
            f"{{temperature}} must be in [{lo:g}, {hi:g}], got {self.temperature} ({{greedy}}: deterministic output)",
            "temperature",
        )
        _check(self.top_k >= 0, "{top_k} must be >= 0", "top_k")
        _check(TOP_P_MIN <= self.top_p <= 1.0, f"{{top_p}} must be in [{TOP_P_MIN:g}, 1], got {self.top_p}", "top_p")
        _check(0.0 <= self.min_p < 1.0, "{min_p} must be in [0, 1)", "min_p")
        _check(
            lo <= self.repetition_penalty <= hi,
            f"{{repetition_penalty}} must be in [{lo:g}, {hi:g}], got {self.repetition_penalty}",
            "repetition_penalty",
        )
        _check(all(isinstance(s, str) and s for s in self.stop), "{stop} strings must not be empty", "stop")


@dataclass
class ClassifyConfig:
    """How lines are classified: ``lstm-text classify``, ``Model.classify_lines`` and POST /v1/classify."""

    # large enough to amortise the per-step overhead, small enough for the cache
    batch_size: int = option_field(512, "Lines per batch.")
    threshold: float = option_field(0.0, "Below this top probability, answer {abstain_label}.")  # 0: never abstain
    abstain_label: str = option_field("neutral", "Label for answers under {threshold}.")
    explain: bool = option_field(False, "Also each word's weight: how much the label's probability drops without it.")
    # the command line's text and tsv output only: every result carries its "lang" (jsonl, HTTP, Python)
    lang: bool = option_field(
        False,
        "Add a language column after the score: langid's ISO 639 code, 'unknown' for a script it never saw, "
        "'zxx' for a line without letters.",
    )

    def __post_init__(self) -> None:
        _finite(self)
        _check(self.batch_size >= 1, f"{{batch_size}} must be at least 1, got {self.batch_size}", "batch_size")
        _check(0.0 <= self.threshold < 1.0, f"{{threshold}} must be in [0, 1), got {self.threshold}", "threshold")


@dataclass(frozen=True)
class ClassifierDefaults:
    """Where a classifier's defaults differ from a language model's: ``train-classifier`` and
    ``train_classifier()`` both start from these (sized for SST-like sentences on a 2-core CPU)."""

    tokenizer: str = "unigram"  # subwords: a sentence is short, and words carry the sentiment; word with --vectors
    vocab_size: int = 8000
    normalize: bool = True  # capitals, clitics, emoji, HTML: raw text reads like the tokenized training text
    max_vectors: int = 40_000  # with --vectors: the vectors' most frequent words kept beside the data's
    layers: int = 1
    hidden: int = 48  # per direction; small data wants a small encoder
    embed: int = 96
    dropout: float = 0.5
    embed_dropout: float = 0.2
    bidirectional: bool = True  # from scratch; a model from --init reads left to right like its LM
    batch_size: int = 64  # lines per step; a smaller file gets fewer (``classifier_batch``)
    min_batch: int = 8
    steps_per_epoch: int = 10  # a file under batch_size x this many lines gets smaller batches, down to min_batch
    lr: float = 3e-3
    warmup: int = 50
    epochs: float = 5.0  # when no other stopping rule is given (a small file: at least min_steps)
    min_steps: int = 200  # a 170-line file learns in ~200 steps of 16 lines; 5 epochs would be 15 steps of 64
    patience: int = 4  # validations (two per epoch) without a better dev score before stopping: two epochs

    MODEL_FIELDS = ("layers", "hidden", "embed", "dropout", "embed_dropout", "bidirectional")


CLASSIFIER = ClassifierDefaults()


def classifier_model(**overrides) -> dict:
    """ModelConfig fields of a classifier trained from scratch (no LM head, no tying)."""
    d = {k: getattr(CLASSIFIER, k) for k in ClassifierDefaults.MODEL_FIELDS}
    return {**d, "lm_head": False, "tie_weights": False, **overrides}


LM_TIME_BUDGET = 300.0  # seconds a language model trains for when no stopping rule is given
STOPPING_RULES = (
    "max_steps",
    "epochs",
    "time_budget",
)  # a run ends at the first it reaches; given on resume, they replace the run's
RESUMABLE = (*STOPPING_RULES, "patience", "eval_interval", "device", "keep_resume")  # what a resumed run may change


def has_stopping_rule(cfg: TrainConfig | dict) -> bool:
    """Whether ``cfg`` (a TrainConfig, or some of its fields as a dict) sets any of the ``STOPPING_RULES``."""
    get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
    return any(get(k) for k in STOPPING_RULES)


def lm_train(resume: bool = False, **overrides) -> TrainConfig:
    """The TrainConfig of a language-model run: TrainConfig's defaults, ``overrides``, and a
    ``LM_TIME_BUDGET`` wall-clock budget when no stopping rule is among them (``resume``: none, the resumed
    run keeps its own rules)."""
    if not resume and not has_stopping_rule(overrides):
        overrides = {**overrides, "time_budget": LM_TIME_BUDGET}
    return TrainConfig(**overrides)


def classifier_train(**overrides) -> TrainConfig:
    """The TrainConfig of a classifier run: the defaults above, then ``overrides``. Two defaults depend on the
    data and are settled by ``fit_classifier`` once it is read: the batch size (0 here) and, without any
    stopping rule, the epochs (0 here)."""
    base = dict(
        tokenizer=CLASSIFIER.tokenizer,
        vocab_size=CLASSIFIER.vocab_size,
        normalize=CLASSIFIER.normalize,
        batch_size=0,
        lr=CLASSIFIER.lr,
        warmup=CLASSIFIER.warmup,
        patience=CLASSIFIER.patience,
    )
    return TrainConfig(**{**base, **overrides})


def classifier_batch(lines: int) -> int:
    """Lines per step for a classifier on ``lines`` training lines: ``CLASSIFIER.batch_size``, or fewer for a
    small file so that an epoch still has ``CLASSIFIER.steps_per_epoch`` steps (never under ``min_batch``)."""
    return max(CLASSIFIER.min_batch, min(CLASSIFIER.batch_size, lines // CLASSIFIER.steps_per_epoch))


def fit_classifier(cfg: TrainConfig, lines: int) -> TrainConfig:
    """``cfg`` with its data-dependent defaults settled for ``lines`` training lines: batch size 0 becomes
    ``classifier_batch(lines)``; no stopping rule becomes ``CLASSIFIER.epochs`` epochs, or more for a small
    file, enough for ``CLASSIFIER.min_steps`` steps."""
    import math

    d: dict[str, Any] = {}
    if not cfg.batch_size:
        d["batch_size"] = classifier_batch(lines)
    if not has_stopping_rule(cfg):
        steps_per_epoch = max(1, math.ceil(lines / d.get("batch_size", cfg.batch_size)))
        d["epochs"] = float(max(CLASSIFIER.epochs, math.ceil(CLASSIFIER.min_steps / steps_per_epoch)))
    return dataclasses.replace(cfg, **d) if d else cfg

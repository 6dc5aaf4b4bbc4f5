"""lstm-text: train LSTM language models on your text, generate from a prompt, classify sentiment.

Heavy modules (torch) load on first use, so ``import lstm_text`` and ``lstm-text --help`` stay instant.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load", "train", "train_classifier", "LstmTextError", "__version__"]

from .errors import LstmTextError


def load(path, device: str = "cpu", quantize: str = ""):
    """Load a model: a run directory, a ``.safetensors`` file, or a built-in name such as ``sentiment``.

    ``quantize="int8"`` runs generation, bpc evaluation and classification with int8 weights (CPU).
    """
    from .api import load as _load

    return _load(path, device, quantize)


def train(
    corpus,
    out,
    *,
    model: dict | None = None,
    callback=None,
    progress: bool | None = None,
    resume: bool = False,
    overwrite: bool = False,
    **options,
) -> dict:
    """Train a language model, as ``lstm-text train`` does; returns the run's summary.

    Args:
        corpus: a text file, a dataset name (``"tinyshakespeare"``) or a list of them.
        out: the run directory to create; ``load(out)`` then loads the model.
        model: ModelConfig fields, e.g. ``{"layers": 2, "hidden": 512}``.
        callback: receives ("start" | "step" | "eval" | "notice" | "warning" | "end", info) events.
        progress: without a ``callback``, show the command line's progress (a bar, a line per validation,
            notices and warnings) on stderr; default: when stderr is a terminal.
        resume: continue the interrupted run in ``out``.
        overwrite: replace a run already in ``out``.
        options: TrainConfig fields (``time_budget``, ``max_steps``, ``epochs``, ``tokenizer``, ``lr``, ...);
            without a stopping rule the run takes 300 wall-clock seconds, as on the command line.
    """
    from .config import lm_train
    from .training.lm import train_lm

    cfg = lm_train(resume, **options)
    cb = callback or _progress(progress)
    return train_lm(_paths(corpus), out, model=model or {}, train=cfg, callback=cb, resume=resume, overwrite=overwrite)


def train_classifier(data, out, *, model: dict | None = None, progress: bool | None = None, **kwargs) -> dict:
    """Train a classifier on labelled files, as ``lstm-text train-classifier`` does (its defaults too).

    Args:
        data: a labelled file (TSV/CSV/JSON Lines) or a list of them.
        out: the run directory to create.
        model: ModelConfig fields over the classifier defaults (``{"hidden": 64}``).
        progress: without a ``callback``, show progress on stderr, as ``train`` does (default: on a terminal).
        kwargs: the keywords of ``lstm_text.training.classifier.train_classifier`` (dev, init, vectors,
            label_map, balance, text_column, label_column, encoding, callback, resume), and TrainConfig fields
            (``epochs``, ``lr``, ``max_len``, ...) over the classifier defaults.
    """
    import inspect

    from .config import classifier_train
    from .training import classifier

    named = set(inspect.signature(classifier.train_classifier).parameters) - {"data", "out", "model", "train"}
    options = {k: v for k, v in kwargs.items() if k not in named}
    calls = {k: v for k, v in kwargs.items() if k in named}
    cfg = classifier_train(**options)
    calls["callback"] = calls.get("callback") or _progress(progress, "dev_accuracy", "dev acc")
    return classifier.train_classifier(_paths(data), out, model=model, train=cfg, **calls)


def _progress(progress: bool | None, metric: str = "val_bpc", label: str = "val bpc"):
    """The command line's progress callback (``ui.TrainProgress``) when ``progress`` (None: stderr is a
    terminal), else None."""
    import sys

    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from .ui import TrainProgress

    return TrainProgress(False, metric, label)


def _paths(arg) -> list[str]:
    """One path (or name) or several, as a list of strings."""
    one = isinstance(arg, str) or hasattr(arg, "__fspath__")
    return [str(arg)] if one else [str(a) for a in arg]

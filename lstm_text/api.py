"""The Python API: ``lstm_text.load(path)`` and the model object the CLI is a thin layer over."""

from __future__ import annotations

from pathlib import Path

from .config import GenerateConfig
from .errors import LstmTextError


class Model:
    """A loaded model: its config, tokenizer, weights and training metadata.

    The torch network (``net``) is built on first use: classification runs on the NumPy inference path
    (``infer.classifier.Classifier``), so classifying never imports torch.
    """

    def __init__(self, ckpt, device: str = "cpu", quantize: str = ""):
        self.ckpt, self.device, self.quantize = ckpt, device, quantize
        self.cfg, self.tokenizer, self.meta = ckpt.cfg, ckpt.tokenizer, ckpt.meta
        self._net = self._classifier = None

    @property
    def net(self):
        """The torch ``LSTMModel`` (built on first use)."""
        if self._net is None:
            from .checkpoint import build_model

            self._net = build_model(self.ckpt, self.device)
        return self._net

    @property
    def classifier(self):
        """The NumPy inference path of the classification head (built on first use)."""
        self._need_classifier()
        if self._classifier is None:
            from .infer.classifier import Classifier

            self._classifier = Classifier(self.cfg, self.ckpt.weights, quantize=self.quantize)
        return self._classifier

    @property
    def has_lm(self) -> bool:
        return self.cfg.lm_head

    @property
    def labels(self) -> list[str]:
        return list(self.cfg.labels)

    def _need_lm(self) -> None:
        if not self.has_lm:
            raise LstmTextError(
                "this model is a classifier without a language-model head: it cannot generate "
                "or be evaluated in bpc; use 'lstm-text classify'"
            )

    def unknown_chars(self, text: str) -> set[str]:
        """Characters of ``text`` the tokenizer never saw in training (they become the unknown token)."""
        return self.tokenizer.unknown(text)

    def stream(self, prompt: str = "", **options):
        """Yield text pieces of one continuation of ``prompt`` as they are produced.

        Options are those of ``GenerateConfig``: max_tokens, temperature, top_k, top_p, min_p,
        repetition_penalty, stop, seed, greedy.
        """
        from .infer.generate import stream

        self._need_lm()
        yield from stream(self.net, self.tokenizer, prompt, GenerateConfig(**options), self.quantize)

    def generate(self, prompt: str = "", *, num_samples: int = 1, **options) -> str | list[str]:
        """One continuation of ``prompt`` (a list of ``num_samples`` when more than one is asked for).

        The continuation only, without the prompt, as ``stream`` yields it (and as completion APIs return
        it); ``prompt + m.generate(prompt)`` is the whole text, which is what ``lstm-text generate`` prints.
        """
        from .infer.generate import generate

        self._need_lm()
        if num_samples < 1:
            raise LstmTextError("--num-samples must be at least 1")
        out = generate(self.net, self.tokenizer, prompt, GenerateConfig(**options), num_samples, self.quantize)
        return out[0] if num_samples == 1 else out

    def evaluate(self, text: str) -> dict:
        """Bits per character, perplexity and counts for ``text`` (always text: a string is never read as a
        path, so a server can pass its clients' text safely). ``evaluate_file`` reads a file."""
        from .evaluate import lm_metrics

        self._need_lm()
        if not isinstance(text, str):
            raise LstmTextError(f"evaluate takes text (a str), got {type(text).__name__}; use evaluate_file for a path")
        return lm_metrics(self.net, self.tokenizer, text, self.quantize)

    def evaluate_file(self, path: str | Path) -> dict:
        """``evaluate`` of a UTF-8 text file's contents."""
        from .data import read_text

        return self.evaluate(read_text(path))

    def _need_classifier(self) -> None:
        if not self.labels:
            raise LstmTextError("this model has no classification head; train one with 'lstm-text train-classifier'")

    def classify(self, texts: str | list[str], *, threshold: float = 0.0) -> dict | list[dict]:
        """Label, score and per-label probabilities for a text (or a list of texts)."""
        from .infer.classifier import classify_stream

        single = isinstance(texts, str)
        lines = [texts] if single else texts
        res = [r for _, r in classify_stream(self.classifier, self.tokenizer, lines, threshold=threshold)]
        return res[0] if single else res

    def explain(self, text: str) -> list[tuple[str, float]]:
        """(word, weight) pairs: how much each word raised the predicted label's probability."""
        from .infer.classifier import explain

        return explain(self.classifier, self.tokenizer, text)

    def evaluate_labelled(
        self,
        path: str | Path,
        label_map: dict[str, str] | None = None,
        *,
        text_column: str | None = None,
        label_column: str | None = None,
        encoding: str | None = None,
    ) -> dict:
        """Accuracy, macro-F1, per-class precision/recall, confusion matrix and ECE on a labelled file.

        ``label_map`` renames the file's labels first (default: the map the model was trained with); the
        columns default to those the model was trained on (``data.labelled.read_labelled``).
        """
        from .data.labelled import map_labels, read_labelled
        from .evaluate import evaluate_labelled

        clf = self.classifier
        trained = self.meta.get("training", {})
        given = label_map is not None
        if not given:
            label_map = trained.get("label_map", {})
        pairs = read_labelled(
            [path],
            text_column=text_column or trained.get("text_column", "text"),
            label_column=label_column or trained.get("label_column", "label"),
            encoding=encoding,
        )
        return evaluate_labelled(clf, self.tokenizer, map_labels(pairs, label_map, check=given))

    def info(self) -> dict:
        cfg = self.cfg
        heads = (["language model"] if cfg.lm_head else []) + (
            [f"classifier ({', '.join(cfg.labels)})"] if cfg.labels else []
        )
        return {
            "path": self.meta.get("path"),
            "heads": heads,
            "parameters": sum(v.size for v in self.ckpt.weights.values()),
            "tokenizer": self.tokenizer.kind,
            "vocab_size": cfg.vocab_size,
            "config": cfg.to_dict(),
            "training": self.meta.get("training", {}),
        }


def load(path: str | Path, device: str = "cpu", quantize: str = "") -> Model:
    """Load a run directory, a model file or a built-in model name (``sentiment``, ``sentiment3``).

    ``quantize="int8"``: generation and bpc evaluation step with int8 weights (dynamic quantization),
    classification holds its lookup table in int8. CPU only.
    """
    from .checkpoint import read_model

    if quantize not in ("", "int8"):
        raise LstmTextError(f"unknown --quantize {quantize!r} (choose int8)")
    if device != "cpu":  # only torch knows the other devices; a wrong one fails here, not at first use
        from .training.runtime import resolve_device

        device = resolve_device(device)
    if quantize and device != "cpu":
        raise LstmTextError("--quantize int8 runs on the CPU only; drop --device or --quantize")
    return Model(read_model(path), device, quantize)

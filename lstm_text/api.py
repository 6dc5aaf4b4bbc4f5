"""The Python API: ``lstm_text.load(path)`` and the model object the CLI is a thin layer over."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

from .config import ClassifyConfig, GenerateConfig
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
        self._guides: dict[str, Model] = {}  # steering classifiers by name, loaded once
        self._fits: dict[str, bool] = {}  # the classifiers whose tokenizer was found to read this model's text
        self._gate = None

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

    def prompt_notes(self, prompt: str) -> list[str]:
        """What a user should know of how this model reads ``prompt``: a very long prompt is read from its end,
        and characters it never saw in training become the unknown token."""
        from .infer.generate import MAX_PROMPT_CHARS

        notes = []
        if len(prompt) > MAX_PROMPT_CHARS:
            notes.append(f"the prompt has {len(prompt):,} characters; the model reads its last {MAX_PROMPT_CHARS:,}")
        unknown = self.unknown_chars(prompt[-MAX_PROMPT_CHARS:])
        if unknown:
            notes.append(
                f"the prompt has {len(unknown)} character(s) this model never saw in training "
                f"({''.join(sorted(unknown))[:20]!r}); they become the unknown token"
            )
        return notes

    def stream(
        self,
        prompt: str = "",
        *,
        sentiment: str | None = None,
        classifier: str = "sentiment",
        strength: float | None = None,
        **options,
    ):
        """An iterator of the text pieces of one continuation of ``prompt``, as they are produced (options
        and steering are checked at the call, before the first piece).

        Options are those of ``GenerateConfig``: max_tokens, temperature, top_k, top_p, min_p,
        repetition_penalty, stop, seed, greedy. ``sentiment``: steer towards this label of ``classifier``
        (FUDGE, ``steer``).
        """
        from .infer.generate import stream

        self._need_lm()
        cfg = GenerateConfig(**options)
        steer = self.steer(sentiment, classifier=classifier, strength=strength, prompt=prompt) if sentiment else None
        return stream(self.net, self.tokenizer, prompt, cfg, self.quantize, steer)

    def generate(
        self,
        prompt: str = "",
        *,
        num_samples: int = 1,
        sentiment: str | None = None,
        classifier: str = "sentiment",
        strength: float | None = None,
        **options,
    ) -> str | list[str]:
        """One continuation of ``prompt`` (a list of ``num_samples`` when more than one is asked for).

        The continuation only, without the prompt, as ``stream`` yields it (and as completion APIs return
        it); ``prompt + m.generate(prompt)`` is the whole text, which is what ``lstm-text generate`` prints.
        ``sentiment``, ``classifier``, ``strength``: as for ``stream``.
        """
        from .infer.generate import generate

        self._need_lm()
        if num_samples < 1:
            raise LstmTextError("{num_samples} must be at least 1", "num_samples")
        cfg = GenerateConfig(**options)
        steer = self.steer(sentiment, classifier=classifier, strength=strength, prompt=prompt) if sentiment else None
        out = generate(self.net, self.tokenizer, prompt, cfg, num_samples, self.quantize, steer)
        return out[0] if num_samples == 1 else out

    def steer(
        self, label: str, *, classifier: str | Model = "sentiment", strength: float | None = None, prompt: str = ""
    ):
        """An ``infer.steer.Steer`` that reweights this model's next tokens towards ``label`` of ``classifier``
        (a built-in name, a run directory, a model file or a loaded ``Model``) with ``strength`` (FUDGE).

        Checked here, each with one clear error: the label is the classifier's, the strength is in range, and
        the classifier's tokenizer reads this model's text (a 200-token sample of it) without mostly unknowns.
        """
        from .infer.steer import STRENGTH, Steer, check_fit, check_label, check_strength

        self._need_lm()
        strength = STRENGTH if strength is None else strength
        check_strength(strength)
        name = classifier if isinstance(classifier, str) else str(classifier.meta.get("path"))
        clf = classifier if isinstance(classifier, Model) else self._guides.get(name)
        if clf is None:
            clf = self._guides[name] = load(name)
        check_label(clf, label, name)
        if not self._fits.get(name):
            sample = self.generate(prompt, max_tokens=200, seed=0)
            assert isinstance(sample, str)  # one sample
            check_fit(clf, prompt + sample, name)
            self._fits[name] = True
        return Steer(self.tokenizer, clf, label, strength, text=prompt, name=name)

    def session(
        self, *, sentiment: str | None = None, classifier: str = "sentiment", strength: float | None = None, **options
    ):
        """An interactive ``infer.session.Session``: turns of text whose LSTM state carries over; ``options`` as
        for ``stream`` (``max_tokens`` per turn), ``sentiment`` steers from the start (``/sentiment`` later)."""
        from .infer.session import Session

        self._need_lm()
        cfg = GenerateConfig(**options)

        def make(label: str):
            return self.steer(label, classifier=classifier, strength=strength)

        s = Session(self.net, self.tokenizer, cfg, self.quantize, make)
        if sentiment:
            s.command(f"/sentiment {sentiment}")
        return s

    def inspect(self, text: str, *, max_tokens: int | None = None, untrained: bool = False, seed: int = 0):
        """The gates, cell and hidden states of every layer and the surprisal of each token of ``text``
        (``probe.Trace``). ``untrained``: the same configuration at its seeded initialisation instead."""
        from . import probe

        weights = probe.untrained_weights(self.cfg, seed) if untrained else self.ckpt.weights
        limit = probe.MAX_TOKENS if max_tokens is None else max_tokens
        return probe.run(self.cfg, weights, self.tokenizer, text, limit)

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

    def evaluate_validation(self) -> dict:
        """bpc on the whole validation split of the corpus the model was trained on (training validates on a
        sample of a big split): the last ``val_fraction`` of each file, read from the token cache (made again
        if it is gone), streamed in bounded memory."""
        from .data.tokens import prepare
        from .evaluate import lm_nll

        self._need_lm()
        t = self.meta.get("training", {})
        if not t.get("corpus"):
            raise LstmTextError("this model does not record its training corpus; give a text file to evaluate")
        vf = t.get("config", {}).get("val_fraction", 0.1)
        tokens = prepare(t["corpus"], kind=self.tokenizer.kind, vocab_size=0, val_fraction=vf, tokenizer=self.tokenizer)
        nll, n = lm_nll(self.net, tokens.val, self.quantize)
        chars = tokens.val_chars
        return {
            "bpc": nll / math.log(2) / chars,
            "loss": nll / n,
            "perplexity": math.exp(nll / n),
            "tokens": n + 1,
            "characters": chars,
            "split": f"the last {vf:g} of each file of {' '.join(t['corpus'])}",
        }

    def _need_classifier(self) -> None:
        if not self.labels:
            raise LstmTextError("this model has no classification head; train one with 'lstm-text train-classifier'")

    @property
    def languages(self) -> list[str]:
        """The languages this model reads, as its card records them (``card.card_facts``; the built-ins: en), then
        those its ``companion`` reads for it. Empty: not recorded, and no line is refused for its language."""
        also = self.companion.langs if self.companion is not None else []
        return self._own_languages + [lang for lang in also if lang not in self._own_languages]

    @functools.cached_property
    def _own_languages(self) -> list[str]:
        """The languages its card records: those the model reads itself."""
        from .card import card_facts

        return list(card_facts(self.ckpt)["language"])

    @functools.cached_property
    def companion(self):
        """The ``ngram.Companion`` that answers for this model the lines in the languages it does not read, and
        joins it on those both read (for the built-ins ``sentiment`` and ``sentiment3``: the built-in
        ``multilingual``); else None."""
        from .card import companion_of

        found = companion_of(self.ckpt)
        if found is None:
            return None
        from .ngram import Companion, builtin

        name, mix = found
        return Companion(builtin(name), tuple(self._own_languages), mix)

    @property
    def gate(self):
        """The ``langid.Gate`` of this model's own languages (and its ``companion``'s): each line's language,
        and who reads it."""
        if self._gate is None:
            from .langid import Gate

            also = self.companion.langs if self.companion is not None else ()
            self._gate = Gate(self._own_languages, also=also)
        return self._gate

    def classify(self, texts: str | list[str], *, threshold: float = ClassifyConfig.threshold) -> dict | list[dict]:
        """Label, score, per-label probabilities and language ("lang", ``langid``) for a text (or a list of
        texts). A text in a language the model does not read gets label and score None (``classify_lines``)."""
        from .infer.classifier import classify_stream

        ClassifyConfig(threshold=threshold)
        single = isinstance(texts, str)
        lines: list[str] = [texts] if isinstance(texts, str) else texts
        pairs = classify_stream(
            self.classifier, self.tokenizer, lines, threshold=threshold, gate=self.gate, second=self.companion
        )
        res = [r for _, r in pairs]
        return res[0] if single else res

    def classify_lines(
        self,
        lines: Iterable[str],
        *,
        batch_size: int = ClassifyConfig.batch_size,
        threshold: float = ClassifyConfig.threshold,
        abstain_label: str = ClassifyConfig.abstain_label,
        explain: bool = ClassifyConfig.explain,
    ) -> Iterator[tuple[str, dict]]:
        """(line, result) for each of ``lines`` in order, as they are classified: ``batch_size`` lines at a time,
        reading a bounded window ahead (``infer.classifier.classify_stream``), so a stream of any length runs in
        bounded memory. Below ``threshold`` the label is ``abstain_label``; an empty line gets label and score
        None. Each result has "lang", the line's language (``langid``: an ISO 639 code, "unknown" for a script
        langid never saw, "zxx" for a line without letters); a line that langid finds, with probability at least
        ``langid.THRESHOLD``, in a language this model does not read (``languages``), or "unknown", gets label and
        score None too. ``explain``: each result also has "explain", the (word, weight) pairs of ``explain``."""
        from .infer.classifier import classify_stream

        ClassifyConfig(batch_size=batch_size, threshold=threshold, abstain_label=abstain_label, explain=explain)
        clf, tok = self.classifier, self.tokenizer
        pairs = classify_stream(
            clf, tok, lines, batch_size=batch_size, threshold=threshold, abstain=abstain_label, gate=self.gate,
            second=self.companion,
        )  # fmt: skip
        if not explain:
            return pairs
        return ((t, {**r, "explain": self.explain(t) if r["label"] is not None else []}) for t, r in pairs)

    def read(self, texts: list[str], lang: str | None = None):
        """(N, C) probabilities over ``labels`` of ``texts`` read as ``lang`` (default: the model's first language)
        by this model, joined with its ``companion`` where that language is one both read (``sentiment3`` and
        English): what ``classify`` answers for lines langid finds in that language. No language ID."""
        from .infer.classifier import encode_lines

        p = self.classifier.probs(encode_lines(self.tokenizer, texts))
        c, lang = self.companion, lang or next(iter(self._own_languages), None)
        return c.join(p, texts, [lang] * len(texts), self.labels) if c is not None and lang else p

    def explain(self, text: str) -> list[tuple[str, float]]:
        """(word, weight) pairs: how much each word raised the predicted label's probability (by occlusion, with
        the model or models that read the text: this one, its ``companion``, or both)."""
        from .infer.classifier import explain

        if self.companion is None:
            return explain(self.read, text)
        lang, who = self.gate([text])[0]  # every variant is read as the line is: in its language, by its readers
        if who == self.gate.ALSO:
            return explain(lambda ts: self.companion.probs(ts, [lang] * len(ts), self.labels), text)
        return explain(lambda ts: self.read(ts, lang), text)

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

        self._need_classifier()
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
        return evaluate_labelled(self.read, self.labels, map_labels(pairs, label_map, check=given))

    def export(self, out: str | Path, *, format: str = "onnx", quantize: str = "", check: bool = True) -> dict:
        """Write this model for other runtimes into the folder ``out`` (``export.export``): ONNX graphs, the
        tokenizer as data and ``export.json``, which describes them (returned). ``quantize="int8"``: int8
        weights. ``check``: run the graphs with onnxruntime beside lstm-text's own paths (``export.check``); the
        largest differences are under the manifest's "check"."""
        from . import export as ex

        if format != "onnx":
            raise LstmTextError(f"unknown export {{format}} {format!r} (choose onnx)", "format")
        manifest = ex.export(self.ckpt, out, quantize=quantize)
        if check:
            manifest["check"] = ex.check(self, out)
        return manifest

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
            "card": self.card(),
        }

    def card(self) -> dict:
        """The model card's headline facts (``card.headline``): licence, language, data, evaluation, intended use;
        "file": the README.md beside the model file, when there is one."""
        from .card import CARD_FILE, card_facts, headline

        readme = Path(str(self.meta.get("path", ""))).parent / CARD_FILE
        facts = card_facts(self.ckpt) | {"language": self.languages}  # with its companion's
        return headline(facts) | {"file": str(readme) if readme.is_file() else None}


def load(path: str | Path, device: str = "cpu", quantize: str = "") -> Model:
    """Load a run directory, a model file or a built-in model name (``sentiment``, ``sentiment3``).

    ``quantize="int8"``: generation and bpc evaluation step with int8 weights (dynamic quantization),
    classification holds its lookup table in int8. CPU only.
    """
    from .checkpoint import read_model

    if quantize not in ("", "int8"):
        raise LstmTextError(f"unknown {{quantize}} {quantize!r} (choose int8)", "quantize")
    if device != "cpu":  # only torch knows the other devices; a wrong one fails here, not at first use
        from .device import resolve_device

        device = resolve_device(device)
    if quantize and device != "cpu":
        raise LstmTextError("{quantize} int8 runs on the CPU only; drop {device} or {quantize}", "quantize")
    return Model(read_model(path), device, quantize)

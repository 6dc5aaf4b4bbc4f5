"""ONNX export: a model as graphs that onnxruntime (or any ONNX runtime) runs, its tokenizer beside them as data.

The graphs are built from the checkpoint's NumPy weights with the ``onnx`` helper API, around ONNX's own
``LSTM`` operator (no torch at export time, so exporting takes as long as writing the file): a language model
is a step graph, token ids (B, T) and the per-layer state in, logits (B, T, V) and the new state out, so a
runtime prefills a prompt and then steps one token at a time; a classifier takes token ids and lengths and
returns calibrated class probabilities, its padding handled by the operator's ``sequence_lens`` exactly as
``LSTMModel.classify`` packs sequences. Needs the ``export`` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import LstmTextError
from .infer.packed import POOLING, directions, pack_lm_head
from .tokenizer import PAD, UNK

OPSET = 17  # ONNX 1.12 (2022): every maintained runtime reads it
FORMAT = "lstm-text-onnx"
VERSION = 1
MANIFEST = "export.json"  # inputs, outputs and shapes of each graph; the tokenizer's and classifier's settings
TOKENIZER = "tokenizer.json"
LM_GRAPH, CLASSIFIER_GRAPH = "lm.onnx", "classifier.onnx"
SPM_MODEL = "tokenizer.model"  # a SentencePiece tokenizer's own model file (C++, Python, JS and Rust read it)
NORMALIZER = "normalize.py"  # a word classifier's text normalisation: lstm_text/normalize.py, standard library only


def _need_onnx():
    try:
        import onnx
    except ImportError:
        raise LstmTextError(
            "ONNX export needs the onnx package: pip install 'lstm-text[export]' (onnx, onnxruntime)"
        ) from None
    return onnx


def _iofc(w: np.ndarray) -> np.ndarray:
    """PyTorch's gate rows i, f, g, o -> ONNX's i, o, f, c (the same four blocks, reordered)."""
    i, f, g, o = np.split(w, 4)
    return np.concatenate([i, o, f, g])


def _lstm_weights(cfg, weights: dict, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX LSTM inputs W (D, 4H, in), R (D, 4H, H), B (D, 8H) of layer ``k``, directions forward then reverse."""
    p = f"lstms.{k}."
    sfx = directions(cfg)
    W = np.stack([_iofc(weights[p + "weight_ih" + s]) for s in sfx])
    R = np.stack([_iofc(weights[p + "weight_hh" + s]) for s in sfx])
    B = np.stack([np.concatenate([_iofc(weights[p + "bias_ih" + s]), _iofc(weights[p + "bias_hh" + s])]) for s in sfx])
    return W.astype(np.float32), R.astype(np.float32), B.astype(np.float32)


class _Graph:
    """Nodes and initialisers of one graph, with fresh names."""

    def __init__(self, onnx):
        self.onnx, self.h = onnx, onnx.helper
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name: str, a) -> str:
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(a), name))
        return name

    def op(self, kind: str, *inputs: str, outputs: int = 1, name: str | None = None, **attrs):
        self.n += 1
        outs = [name] if name else [f"{kind.lower()}_{self.n}_{j}" for j in range(outputs)]
        self.nodes.append(self.h.make_node(kind, list(inputs), outs, **attrs))
        return outs[0] if outputs == 1 else outs

    def model(self, graph_name: str, inputs: list, outputs: list, doc: str):
        g = self.h.make_graph(self.nodes, graph_name, inputs, outputs, self.inits)
        m = self.h.make_model(
            g, opset_imports=[self.h.make_opsetid("", OPSET)], producer_name="lstm-text", doc_string=doc
        )
        m.ir_version = 8  # the IR of opset 17: runtimes older than the onnx package still load it
        self.onnx.checker.check_model(m, full_check=True)
        return m


def _embed_tbe(g: _Graph, weights: dict) -> str:
    """The embedding of ``input_ids`` (B, T), time-major for the LSTM operator: (T, B, E)."""
    x = g.op("Gather", g.const("embed", weights["embed.weight"].astype(np.float32)), "input_ids")  # (B, T, E)
    return g.op("Transpose", x, perm=[1, 0, 2])  # (T, B, E)


def lm_graph(cfg, weights: dict):
    """The language model's step graph: input_ids (B, T), state_h/state_c (L, B, H) -> logits (B, T, V),
    state_h_out/state_c_out (L, B, H). Zeros as the state start a text; feeding back the state continues it."""
    onnx = _need_onnx()
    g, T = _Graph(onnx), onnx.TensorProto
    H, L, V = cfg.hidden, cfg.layers, cfg.vocab_size
    x = _embed_tbe(g, weights)
    hs, cs = [], []
    for k in range(L):
        W, R, B = _lstm_weights(cfg, weights, k)
        sl = [g.const(f"s{k}", np.array([k])), g.const(f"e{k}", np.array([k + 1])), g.const(f"a{k}", np.array([0]))]
        h0 = g.op("Slice", "state_h", *sl)  # (1, B, H)
        c0 = g.op("Slice", "state_c", *sl)
        y, yh, yc = g.op(
            "LSTM",
            x,
            g.const(f"W{k}", W),
            g.const(f"R{k}", R),
            g.const(f"B{k}", B),
            "",
            h0,
            c0,
            outputs=3,
            hidden_size=H,
        )  # (T, 1, B, H), (1, B, H), (1, B, H)
        x = g.op("Squeeze", y, g.const(f"sq{k}", np.array([1])))  # (T, B, H)
        hs.append(yh)
        cs.append(yc)
    for name, parts in (("state_h_out", hs), ("state_c_out", cs)):  # (L, B, H)
        g.op("Concat", *parts, axis=0, name=name)
    w, b = pack_lm_head(cfg, weights)  # (V, H), (V,): a tied head's projection folded in
    x = g.op("Transpose", x, perm=[1, 0, 2])  # (B, T, H)
    x = g.op("MatMul", x, g.const("head_w", np.ascontiguousarray(w.T)))  # (B, T, V)
    g.op("Add", x, g.const("head_b", b), name="logits")
    f = T.FLOAT
    inputs = [
        g.h.make_tensor_value_info("input_ids", T.INT64, ["batch", "length"]),
        g.h.make_tensor_value_info("state_h", f, [L, "batch", H]),
        g.h.make_tensor_value_info("state_c", f, [L, "batch", H]),
    ]
    outputs = [
        g.h.make_tensor_value_info("logits", f, ["batch", "length", V]),
        g.h.make_tensor_value_info("state_h_out", f, [L, "batch", H]),
        g.h.make_tensor_value_info("state_c_out", f, [L, "batch", H]),
    ]
    return g.model("lstm_text_lm", inputs, outputs, "lstm-text language model: prefill a prompt, then step")


def classifier_graph(cfg, weights: dict):
    """The classifier's graph: input_ids (B, T) right-padded, lengths (B,) -> probs (B, C) (calibrated) and
    logits (B, C). The same function as ``LSTMModel.classify`` and ``infer.classifier.Classifier``."""
    onnx = _need_onnx()
    g, T = _Graph(onnx), onnx.TensorProto
    H, D, C = cfg.hidden, len(directions(cfg)), len(cfg.labels)
    x = _embed_tbe(g, weights)
    lengths = g.op("Max", "lengths", g.const("one", np.array(1, np.int64)))  # (B,): an empty line reads one PAD
    seq_lens = g.op("Cast", lengths, to=T.INT32)
    direction = "bidirectional" if D == 2 else "forward"
    for k in range(cfg.layers):
        W, R, B = _lstm_weights(cfg, weights, k)
        y, yh = g.op(
            "LSTM",
            x,
            g.const(f"W{k}", W),
            g.const(f"R{k}", R),
            g.const(f"B{k}", B),
            seq_lens,
            outputs=2,
            hidden_size=H,
            direction=direction,
        )  # (T, D, B, H), (D, B, H): the reverse direction reads each line backwards within its own length
        if k < cfg.layers - 1:
            x = g.op("Transpose", y, perm=[0, 2, 1, 3])  # (T, B, D, H)
            x = g.op("Reshape", x, g.const(f"tbx{k}", np.array([0, 0, -1])))  # (T, B, D*H): directions side by side
    out = g.op("Transpose", y, perm=[2, 0, 1, 3])  # (B, T, D, H)
    out = g.op("Reshape", out, g.const("btx", np.array([0, 0, -1])))  # (B, T, D*H)
    # each direction's state after reading the line: forward at its last token, reverse at its first
    last = g.op("Reshape", g.op("Transpose", yh, perm=[1, 0, 2]), g.const("bx", np.array([0, -1])))  # (B, D*H)
    shape = g.op("Shape", "input_ids")
    t = g.op("Gather", shape, g.const("one_i", np.array(1, np.int64)))  # T, a scalar
    steps = g.op("Range", g.const("zero", np.array(0, np.int64)), t, g.const("step", np.array(1, np.int64)))  # (T,)
    ax0, ax1 = g.const("ax0", np.array([0])), g.const("ax1", np.array([1]))
    valid = g.op("Less", g.op("Unsqueeze", steps, ax0), g.op("Unsqueeze", lengths, ax1))  # (B, T)
    valid = g.op("Unsqueeze", valid, g.const("ax2", np.array([2])))  # (B, T, 1)
    masked = g.op("Where", valid, out, g.const("ninf", np.array(-np.inf, np.float32)))
    mx = g.op("ReduceMax", masked, axes=[1], keepdims=0)  # (B, D*H)
    total = g.op("ReduceSum", g.op("Where", valid, out, g.const("zf", np.array(0, np.float32))), ax1, keepdims=0)
    mean = g.op("Div", total, g.op("Unsqueeze", g.op("Cast", lengths, to=T.FLOAT), ax1))  # (B, D*H)
    pooled = {"last": last, "max": mx, "mean": mean}
    feats = g.op("Concat", *[pooled[p] for p in POOLING], axis=1)  # (B, 3*D*H)
    w = np.ascontiguousarray(weights["cls_head.1.weight"].T.astype(np.float32))  # (3*D*H, C)
    logits = g.op("Add", g.op("MatMul", feats, g.const("cls_w", w)), g.const("cls_b", weights["cls_head.1.bias"]))
    g.op("Identity", logits, name="logits")
    temp = g.const("temperature", np.array(cfg.calibration_temperature, np.float32))
    g.op("Softmax", g.op("Div", logits, temp), axis=-1, name="probs")
    inputs = [
        g.h.make_tensor_value_info("input_ids", T.INT64, ["batch", "length"]),
        g.h.make_tensor_value_info("lengths", T.INT64, ["batch"]),
    ]
    outputs = [
        g.h.make_tensor_value_info("probs", T.FLOAT, ["batch", C]),
        g.h.make_tensor_value_info("logits", T.FLOAT, ["batch", C]),
    ]
    return g.model("lstm_text_classifier", inputs, outputs, "lstm-text classifier: calibrated class probabilities")


def tokenizer_data(tok) -> dict:
    """The tokenizer as data a runtime in any language can use: each id's text and bytes, and the rules."""
    V = tok.vocab_size
    d = {
        "kind": tok.kind,
        "vocab_size": V,
        "pad_id": PAD,
        "unk_id": UNK,
        "normalize": getattr(tok, "normalize", ""),
        # decoding: concatenate the bytes of the ids, then read them as UTF-8 (invalid bytes as U+FFFD)
        "piece_bytes": [tok.piece_bytes(i).hex() for i in range(V)],
    }
    if tok.kind == "char":
        d["encode"] = "each character's id in `tokens`; a character not there is unk_id"
        d["tokens"] = ["", ""] + tok.chars
    elif tok.kind == "word":
        d["encode"] = "normalise the text (`normalize`, when set), split on whitespace, each word's id in `tokens`"
        d["tokens"] = tok.pieces()
    else:
        d["encode"] = (
            f"normalise the text (`normalize`, when set), then SentencePiece ({SPM_MODEL}) line by line: the ids "
            "of each line, joined by the id of the '\\n' piece"
        )
        d["sentencepiece_model"] = SPM_MODEL
    return d


def _io(model) -> tuple[list[dict], list[dict]]:
    """Name, dtype and shape (dimension names where dynamic) of a graph's inputs and outputs."""
    import onnx

    def one(v) -> dict:
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        return {
            "name": v.name,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
            "shape": dims,
        }

    return [one(v) for v in model.graph.input], [one(v) for v in model.graph.output]


def export(ckpt, out: str | Path, *, quantize: str = "") -> dict:
    """Write the ONNX graphs of a model (``checkpoint.Checkpoint``) and its tokenizer into the folder ``out``.

    Files: ``lm.onnx`` (a language model), ``classifier.onnx`` (a classifier), ``tokenizer.json``,
    ``tokenizer.model`` (SentencePiece), ``normalize.py`` (a normalising tokenizer) and ``export.json``,
    which describes them. The folder is written whole or not at all; an earlier export there is replaced,
    anything else refuses. ``quantize="int8"``: weights in int8 (onnxruntime's dynamic quantization).
    Returns the manifest.
    """
    from . import __version__

    onnx = _need_onnx()
    if quantize not in ("", "int8"):
        raise LstmTextError(f"unknown {{quantize}} {quantize!r} (choose int8)", "quantize")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise LstmTextError(f"{out} exists and is not an lstm-text export; choose another {{out}}", "out")
    cfg, tok = ckpt.cfg, ckpt.tokenizer
    graphs = {}
    if cfg.lm_head:
        graphs[LM_GRAPH] = lm_graph(cfg, ckpt.weights)
    if cfg.labels:
        graphs[CLASSIFIER_GRAPH] = classifier_graph(cfg, ckpt.weights)
    manifest = {
        "format": FORMAT,
        "format_version": VERSION,
        "lstm_text_version": __version__,
        "source": str(ckpt.meta.get("path", "")),
        "opset": OPSET,
        "quantize": quantize,
        "config": cfg.to_dict(),
        "tokenizer": TOKENIZER,
        "graphs": {},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for name, model in graphs.items():
            onnx.save(model, str(tmp / name))
            if quantize:
                _quantize(tmp / name)
            inputs, outputs = _io(model)
            manifest["graphs"][name] = {"inputs": inputs, "outputs": outputs}
        if LM_GRAPH in graphs:
            from .infer.generate import prompt_ids

            manifest["graphs"][LM_GRAPH] |= {
                "task": "text-generation",
                "empty_prompt_ids": prompt_ids(tok, ""),  # what generation reads when the prompt is empty
                "never_sample": [PAD],  # padding is never text: its logit is set to -inf before choosing
            }
        if CLASSIFIER_GRAPH in graphs:
            from .infer.classifier import MAX_TOKENS

            manifest["graphs"][CLASSIFIER_GRAPH] |= {
                "task": "text-classification",
                "labels": list(cfg.labels),
                "calibration_temperature": cfg.calibration_temperature,  # already inside `probs`
                # a line longer than max_tokens keeps its first quarter and last three quarters of the ids;
                # one longer than max_chars characters is first cut the same way in characters, joined by a space
                "max_tokens": MAX_TOKENS,
                "max_chars": MAX_TOKENS * 16,
                "empty_line": "a line of only whitespace has no label",
            }
        # ASCII JSON: a lone surrogate in a char table stays valid JSON (\udXXX) instead of failing to encode
        (tmp / TOKENIZER).write_text(json.dumps(tokenizer_data(tok)), encoding="utf-8")
        if tok.kind in ("bpe", "unigram"):
            (tmp / SPM_MODEL).write_bytes(tok.proto)
        if getattr(tok, "normalize", ""):
            shutil.copyfile(Path(__file__).with_name("normalize.py"), tmp / NORMALIZER)
            manifest["normalizer"] = NORMALIZER
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.chmod(0o755)
        old = None
        if out.exists():  # an earlier export: moved aside, replaced, then removed
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            out.rename(old / "x")
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _quantize(path: Path) -> None:
    """int8 weights in place: MatMul and LSTM weights (onnxruntime's dynamic quantization)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise LstmTextError("{quantize} int8 needs onnxruntime: pip install 'lstm-text[export]'", "quantize") from None
    import logging

    q = path.with_suffix(".int8.onnx")
    logging.disable(logging.WARNING)  # its advice to pre-process (shape inference) is for image models
    try:
        quantize_dynamic(str(path), str(q), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    q.replace(path)


def session(path: str | Path, threads: int = 0):
    """An onnxruntime CPU session of an exported graph (``threads`` 0: onnxruntime's choice)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise LstmTextError("running an export needs onnxruntime: pip install 'lstm-text[export]'") from None
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def check(model, out: str | Path, *, batch: int = 4, length: int = 48, seed: int = 0) -> dict:
    """The largest absolute differences between an export in ``out`` run by onnxruntime and lstm-text's own paths
    (``api.Model``), on a batch of seeded random token ids: ``lm_logits`` against the torch model's full-sequence
    logits, the prompt's first half read at once and the rest one token per step with the state fed back;
    ``classifier_probs`` against the NumPy classifier on lines of different lengths."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    cfg = model.cfg
    ids = rng.integers(2, cfg.vocab_size, (batch, length)) if cfg.vocab_size > 2 else np.ones((batch, length), int)
    r = {}
    if (out / LM_GRAPH).is_file():
        import torch

        with torch.inference_mode():
            model.net.eval()
            ref = model.net(torch.from_numpy(ids))[0].float().numpy()  # (B, T, V)
        s = session(out / LM_GRAPH)
        z = np.zeros((cfg.layers, batch, cfg.hidden), np.float32)
        half = length // 2
        got, h, c = s.run(None, {"input_ids": ids[:, :half], "state_h": z, "state_c": z})
        steps = [got]
        for t in range(half, length):
            logits, h, c = s.run(None, {"input_ids": ids[:, t : t + 1], "state_h": h, "state_c": c})
            steps.append(logits)
        r["lm_logits"] = float(np.abs(np.concatenate(steps, 1) - ref).max())
    if (out / CLASSIFIER_GRAPH).is_file():
        lengths = rng.integers(1, length + 1, batch)
        lengths[0] = length
        seqs = [ids[i, : lengths[i]].tolist() for i in range(batch)]
        padded = np.where(np.arange(length)[None, :] < lengths[:, None], ids, PAD)
        probs = session(out / CLASSIFIER_GRAPH).run(["probs"], {"input_ids": padded, "lengths": lengths})[0]
        r["classifier_probs"] = float(np.abs(probs - model.classifier.probs(seqs)).max())
    return r

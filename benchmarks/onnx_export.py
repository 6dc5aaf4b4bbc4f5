"""ONNX export figures for benchmarks/README.md: export time of a 2 x 512 model, the int8 graphs' accuracy and
bpc against float32 and lstm-text, and the speed of onnxruntime against lstm-text's own CPU paths on one thread.

Run (one command; needs the export extra):
    LSTM_TEXT_DATA=../shared/data python benchmarks/onnx_export.py --lm runs/demo

--lm: a language model run for bpc and generation (skipped without it); --text: the text its bpc is measured on
(default: the last 10% of tiny-shakespeare); --dev: labelled files for the classifier (default: SST-2 dev).
Writes benchmarks/onnx_results.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import lstm_text  # noqa: E402
from lstm_text.export import export, session  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def export_time(tmp: Path) -> dict:
    """Seconds to export a 2 x 512 char LM (fresh weights: export time does not depend on training)."""
    from lstm_text.checkpoint import read_model, save_model
    from lstm_text.config import ModelConfig
    from lstm_text.model import LSTMModel
    from lstm_text.tokenizer import CharTokenizer

    tok = CharTokenizer.train("".join(chr(c) for c in range(32, 127)) + "\n")
    net = LSTMModel(ModelConfig(vocab_size=tok.vocab_size, layers=2, hidden=512, embed=256))
    save_model(tmp / "m.safetensors", net, tok)
    ckpt = read_model(tmp / "m.safetensors")
    t = time.perf_counter()
    export(ckpt, tmp / "x2x512")
    return {"model": "2 x 512, embed 256, char", "params": net.num_params(), "seconds": time.perf_counter() - t}


def classifier_figures(name: str, dev: list[Path], tmp: Path, repeat: int) -> dict:
    from lstm_text.data.labelled import read_labelled
    from lstm_text.infer.classifier import Classifier, classify_stream

    m = lstm_text.load(name)
    clf = _example("onnx_classify")
    r = {"model": name}
    for q in ("", "int8"):
        export(m.ckpt, tmp / f"{name}{q}", quantize=q)
    for f in dev:
        pairs = read_labelled([f])
        texts, gold = [t for t, _ in pairs], [g for _, g in pairs]
        row = {"lines": len(texts), "lstm-text": m.evaluate_labelled(f)["accuracy"]}
        for q in ("", "int8"):
            got = clf.classify(tmp / f"{name}{q}", texts)
            row[f"onnx {q or 'float32'}"] = float(np.mean([g is not None and g[0] == y for g, y in zip(got, gold)]))
        r[f"accuracy {f.parent.name}/{f.name}"] = row
    lines = [t for t, _ in read_labelled([dev[0]])]
    lines = (lines * (20_000 // len(lines) + 1))[:20_000]
    one = Classifier(m.cfg, m.ckpt.weights, threads=1)
    r["lines"] = len(lines)
    r["lines/s lstm-text NumPy, 1 thread"] = len(lines) / best_of(
        repeat, lambda: list(classify_stream(one, m.tokenizer, lines))
    )
    for q in ("", "int8"):
        r[f"lines/s onnxruntime {q or 'float32'}, 1 thread"] = len(lines) / best_of(
            repeat, lambda q=q: clf.classify(tmp / f"{name}{q}", lines, threads=1)
        )
    return r


def onnx_bpc(folder: Path, ids: list[int], chars: int) -> float:
    """bpc of ``ids`` through the exported step graph, in lstm-text's evaluation windows (state carried)."""
    from lstm_text.data.batches import eval_windows
    from lstm_text.evaluate import EVAL_BATCH, EVAL_SEQ

    s = session(folder / "lm.onnx", threads=1)
    total, state = 0.0, None
    for x, y, m in eval_windows(ids, EVAL_BATCH, EVAL_SEQ):
        x, y, m = x.numpy(), y.numpy(), m.numpy()
        if state is None:
            cfg = json.loads((folder / "export.json").read_text())["config"]
            state = [np.zeros((cfg["layers"], x.shape[0], cfg["hidden"]), np.float32)] * 2
        logits, h, c = s.run(None, {"input_ids": x, "state_h": state[0], "state_c": state[1]})
        state = [h, c]
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))  # (B, T, V)
        nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
        total += float((nll * m).sum(dtype=np.float64))
    return total / math.log(2) / chars


def lm_figures(run: str, text: str, tmp: Path, repeat: int) -> dict:
    m = lstm_text.load(run)
    gen = _example("onnx_generate")
    r = {"model": run, "config": m.cfg.to_dict(), "text characters": len(text)}
    for q in ("", "int8"):
        export(m.ckpt, tmp / f"lm{q}", quantize=q)
    ids = m.tokenizer.encode(text)
    r["bpc lstm-text"] = m.evaluate(text)["bpc"]
    r["bpc lstm-text int8 steps"] = lstm_text.load(run, quantize="int8").evaluate(text)["bpc"]
    for q in ("", "int8"):
        r[f"bpc onnx {q or 'float32'}"] = onnx_bpc(tmp / f"lm{q}", ids, len(text))
    prompt, n = text[:200], 200
    want = m.generate(prompt, greedy=True, max_tokens=n)
    r["greedy 200 identical (float32)"] = gen.generate(tmp / "lm", prompt, n, threads=1) == want
    r["greedy 200 identical (int8)"] = gen.generate(tmp / "lmint8", prompt, n, threads=1) == want
    r["tokens/s lstm-text generate --greedy, 1 thread"] = n / best_of(
        repeat, lambda: m.generate(prompt, greedy=True, max_tokens=n)
    )
    for q in ("", "int8"):
        r[f"tokens/s onnxruntime {q or 'float32'}, 1 thread"] = n / best_of(
            repeat, lambda q=q: gen.generate(tmp / f"lm{q}", prompt, n, threads=1)
        )
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lm", help="language model run directory (bpc, generation)")
    p.add_argument("--text", type=Path, help="text for bpc (default: the last 10%% of tiny-shakespeare)")
    p.add_argument("--classifier", default="sentiment")
    p.add_argument("--dev", type=Path, action="append", help="labelled dev files (default: SST-2 dev)")
    p.add_argument("--repeat", type=int, default=3, help="timings: best of this many")
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "onnx_results.json")
    a = p.parse_args()
    torch.set_num_threads(1)
    data = Path(os.environ.get("LSTM_TEXT_DATA", "../shared/data"))
    out = {"uptime": os.popen("uptime").read().strip()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out["export"] = export_time(tmp)
        if a.classifier:
            out["classifier"] = classifier_figures(a.classifier, a.dev or [data / "sst2" / "dev.tsv"], tmp, a.repeat)
        if a.lm:
            if a.text:
                text = a.text.read_text(encoding="utf-8")
            else:
                full = (data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
                text = full[int(len(full) * 0.9) :]
            out["lm"] = lm_figures(a.lm, text, tmp, a.repeat)
    json.dump(out, sys.stdout, indent=1)
    print()
    a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

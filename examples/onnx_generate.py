#!/usr/bin/env python3
"""Greedy generation with an lstm-text ONNX export, on onnxruntime and NumPy only (no torch, no lstm-text).

    lstm-text export RUN -o EXPORT_DIR
    python examples/onnx_generate.py EXPORT_DIR "PROMPT" --max-tokens 200

Prints the continuation of PROMPT: the text `lstm-text generate RUN "PROMPT" --greedy` prints after the prompt.
The prompt is read once (prefill), then each new token is one step of the graph with the LSTM state fed back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_tokenizer import Tokenizer  # noqa: E402

PREFILL_CHUNK = 4096  # prompt tokens per graph call: the logits of a chunk are (1, chunk, V)
MAX_PROMPT_CHARS = 1_000_000  # as lstm-text: a longer prompt is read from its last this-many characters


def generate(folder: Path, prompt: str, max_tokens: int, threads: int = 0) -> str:
    tok = Tokenizer(folder)
    spec = tok.manifest["graphs"]["lm.onnx"]
    cfg = tok.manifest["config"]
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(folder / "lm.onnx"), opts, providers=["CPUExecutionProvider"])
    ids = tok.encode(prompt[-MAX_PROMPT_CHARS:]) or spec["empty_prompt_ids"]
    h = c = np.zeros((cfg["layers"], 1, cfg["hidden"]), np.float32)  # (L, B, H)
    for s in range(0, len(ids), PREFILL_CHUNK):
        chunk = np.array([ids[s : s + PREFILL_CHUNK]], np.int64)  # (1, T)
        logits, h, c = sess.run(None, {"input_ids": chunk, "state_h": h, "state_c": c})
    decode, out = tok.decoder(), []
    for _ in range(max_tokens):
        last = logits[0, -1]  # (V,)
        last[spec["never_sample"]] = -np.inf
        t = int(last.argmax())
        out.append(decode(t))
        logits, h, c = sess.run(None, {"input_ids": np.array([[t]], np.int64), "state_h": h, "state_c": c})
    return "".join(out) + decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export_dir", type=Path)
    ap.add_argument("prompt", nargs="?", default="")
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: its choice)")
    a = ap.parse_args()
    sys.stdout.write(generate(a.export_dir, a.prompt, a.max_tokens, a.threads) + "\n")


if __name__ == "__main__":
    main()

"""One-shot GPU benchmark (under 8 minutes on one GPU): prints a Markdown table of

- training tokens/s of 1 x 512 and 3 x 1024 language models (nn.LSTM: cuDNN on CUDA), in bf16 autocast and fp32,
  and the validation bpc each reaches after the same number of steps (tinyshakespeare when LSTM_TEXT_DATA has it,
  else synthetic SST-like text),
- generation tokens/s of each trained model at batch 1 (``Model.generate``) and with 64 streams stepped as one
  batch (``infer.batch.BatchGenerator``, as ``lstm-text serve`` runs them),
- classify lines/s of the built-in sentiment model (NumPy on the host CPU: the classifier never uses the GPU),

with the GPU's name (or the CPU's) above it.

    python benchmarks/gpu.py                          # CUDA, the full run
    python benchmarks/gpu.py --device cpu --quick     # a dry run of every step in about a minute (tests run it)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def corpus(tmp: str, quick: bool) -> str:
    data = Path(os.environ.get("LSTM_TEXT_DATA", "")) / "tinyshakespeare" / "input.txt"
    if data.is_file() and not quick:
        return str(data)
    from lstm_text.bench import sst_like_lines

    path = Path(tmp) / "corpus.txt"
    path.write_text("\n".join(sst_like_lines(2000 if quick else 40_000, seed=1)) + "\n", encoding="utf-8")
    return str(path)


def train_row(text: str, out: str, layers: int, hidden: int, precision: str, args) -> dict:
    import lstm_text

    times: list[float] = []  # when each step ended: the rate over the steps after the first fifth (warm-up)

    def on(kind: str, info: dict) -> None:
        if kind == "step":
            times.append(time.perf_counter())

    s = lstm_text.train(
        text,
        out,
        callback=on,
        model={"layers": layers, "hidden": hidden},
        max_steps=args.steps,
        batch_size=args.batch_size,
        device=args.device,
        precision=precision,
        val_tokens=1000 if args.quick else 250_000,
        eval_interval=args.steps,
    )
    k = len(times) // 5
    steps, seconds = len(times) - 1 - k, times[-1] - times[k] if times else 0.0
    rate = (
        steps * args.batch_size * 64 / seconds if steps > 0 and seconds > 0 else s["tokens"] / max(s["seconds"], 1e-9)
    )
    return {"tokens_per_s": rate, "bpc": s["last_val_bpc"], "steps": s["steps"]}


def generation_rates(run: str, args) -> dict:
    """Tokens/s of one sample (``Model.generate``) and of 64 streams stepped as one batch."""
    import torch

    import lstm_text
    from lstm_text.config import GenerateConfig
    from lstm_text.infer.batch import BatchGenerator, Sink

    m = lstm_text.load(run, device=args.device)
    n = args.gen_tokens

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    m.generate("the ", max_tokens=8, seed=0)  # warm-up
    sync()
    t = time.perf_counter()
    m.generate("the ", max_tokens=n, seed=0)
    sync()
    one = n / (time.perf_counter() - t)
    batch = BatchGenerator(m.net, m.tokenizer)
    for i in range(64):
        batch.add("the ", GenerateConfig(max_tokens=n, seed=i), 1, Sink())
    while batch.reading:  # every prompt read: from here each step decodes 64 rows
        batch.step()
    sync()
    t, made = time.perf_counter(), 0
    while batch:
        made += batch.step()
    sync()
    return {"batch1_tokens_per_s": one, "batch64_tokens_per_s": made / (time.perf_counter() - t)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--quick", action="store_true", help="a dry run: small models, a few steps")
    ap.add_argument("--steps", type=int, help="training steps per model (default 300; --quick 2)")
    ap.add_argument("--batch-size", type=int, default=64, help="training batch (x 64 tokens)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    args.steps = args.steps or (2 if args.quick else 300)
    args.gen_tokens = 20 if args.quick else 500
    if args.quick:
        args.batch_size = min(args.batch_size, 8)

    import torch

    import lstm_text
    from lstm_text.bench import classify_rate, machine, sst_like_lines

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: pass --device cpu for a dry run")
    name = torch.cuda.get_device_name(args.device) if cuda else machine()["cpu"]
    shapes = [(1, 64), (2, 64)] if args.quick else [(1, 512), (3, 1024)]
    precisions = ["bf16", "fp32"] if cuda else ["fp32"]  # bf16 autocast is for CUDA (Runtime refuses it elsewhere)

    tmp = tempfile.mkdtemp(prefix="gpu_bench_")
    text = corpus(tmp, args.quick)
    rows, t0 = [], time.perf_counter()
    for layers, hidden in shapes:
        row = {"model": f"{layers} x {hidden}"}
        for p in precisions:
            run = f"{tmp}/lm-{layers}x{hidden}-{p}"
            r = train_row(text, run, layers, hidden, p, args)
            row[f"train_{p}_tokens_per_s"], row[f"bpc_{p}"] = r["tokens_per_s"], r["bpc"]
        row |= generation_rates(run, args)  # of the last (fp32) run: generation reads float32 weights
        rows.append(row)

    clf = lstm_text.load("sentiment")
    lines = sst_like_lines(500 if args.quick else 20_000)
    lines_per_s = classify_rate(clf.classifier, clf.tokenizer, lines, reps=1 if args.quick else 3)
    seconds = time.perf_counter() - t0

    cudnn = torch.backends.cudnn.version() if cuda else None
    print(f"## lstm-text on {name} (torch {torch.__version__}{f', cuDNN {cudnn}' if cudnn else ''})\n")
    print(
        f"{args.steps} training steps of {args.batch_size} x 64 tokens per model; {args.gen_tokens} tokens per sample\n"
    )
    head = ["model"]
    for p in precisions:
        head += [f"train tokens/s {p}", f"bpc {p}"]
    head += ["generate tokens/s batch 1", "generate tokens/s 64 streams"]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for r in rows:
        cells = [r["model"]]
        for p in precisions:
            cells += [f"{r[f'train_{p}_tokens_per_s']:,.0f}", f"{r[f'bpc_{p}']:.3f}"]
        cells += [f"{r['batch1_tokens_per_s']:,.0f}", f"{r['batch64_tokens_per_s']:,.0f}"]
        print("| " + " | ".join(cells) + " |")
    print(f"\nclassify (built-in sentiment, NumPy on the host CPU): {lines_per_s:,.0f} lines/s")
    print(f"whole run: {seconds:.0f} s")
    if args.json:
        out = {"device": name, "torch": torch.__version__, "cudnn": cudnn, "steps": args.steps, "rows": rows}
        Path(args.json).write_text(json.dumps({**out, "classify_lines_per_s": lines_per_s, "seconds": seconds}))


if __name__ == "__main__":
    main()

"""Where a training step of the default configuration spends its time (torch.profiler, CPU).

    .venv/bin/python benchmarks/profile_train.py [--steps 10]

Prints the operators by self CPU time, so the share of the matrix products (the FLOP/s numerator) and of
everything else (elementwise gate math, optimiser, clipping, autograd bookkeeping) can be read off.
"""

from __future__ import annotations

import argparse
import time

from torch.profiler import ProfilerActivity, profile

from lstm_text.bench import CHARS, gemm_gflops, lstm_params, train_step
from lstm_text.config import ModelConfig, TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rows", type=int, default=18)
    args = ap.parse_args()
    cfg, tcfg = ModelConfig(vocab_size=len(CHARS) + 2), TrainConfig()
    step = train_step(cfg, tcfg)
    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    wall = (time.perf_counter() - t) / args.steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    ops = prof.key_averages()
    print(ops.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    total = sum(e.self_cpu_time_total for e in ops) / 1e3 / args.steps  # ms per step inside operators
    lstm = sum(e.self_cpu_time_total for e in ops if "rnn_layer" in e.key) / 1e3 / args.steps
    tokens = tcfg.batch_size * tcfg.seq_len
    lstm_flops = 6 * tokens * lstm_params(cfg)
    gemm = gemm_gflops(1024, 1024, 1024, 5)
    print(f"wall {wall * 1e3:.1f} ms/step without the profiler; {total:.1f} ms/step inside operators")
    print(
        f"oneDNN LSTM kernels (forward + backward): {lstm:.1f} ms/step = {lstm / total:.0%} of operator time, "
        f"{lstm_flops / lstm / 1e6:.1f} GFLOP/s = {lstm_flops / lstm / 1e6 / gemm:.2f} of GEMM ({gemm:.1f} GFLOP/s)"
    )


if __name__ == "__main__":
    main()

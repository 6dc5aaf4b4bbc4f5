"""Speed figures for the README: how close training and generation come to this machine's matmul rate.

One run measures, in the same process, so the ratios it prints compare like with like:
1. fp32 GEMM GFLOP/s, best of several timings: a 1024^3 square product (``gemm_gflops``) and the shapes
   the LSTM multiplies in training, [B*T, in] x [in, 4H] per layer and [B, H] x [H, 4H] per time step;
2. training tokens/s (forward, backward, clip_grad_norm_, AdamW step, state carried detached), and its
   FLOP/s as a share of ``gemm_gflops``, counting 6 FLOPs per matmul weight per token;
3. generation tokens/s at batch 1 through ``lstm_text.generate.sample_tokens``, next to the matmul-only
   bound (one fused [1, in+H] x [in+H, 4H] addmm per layer plus the output products) and a naive loop
   calling nn.LSTM once per token with multinomial sampling (pytorch/examples word_language_model),
   for the configured model and a 2x512 (embed 512) one.

Run: ``make bench`` (``python benchmarks/speed.py``). ``--quick`` is a smoke check with tiny counts and,
unless given, a small batch (8 x 32); ``--json PATH`` writes every figure; ``--threads N`` sets torch's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import string
import subprocess
import time
from pathlib import Path

import torch
import torch.nn as nn
from rich.console import Console
from rich.table import Table

from lstm_text.config import GenerateConfig, ModelConfig, TrainConfig
from lstm_text.generate import sample_tokens
from lstm_text.model import LSTMModel
from lstm_text.tokenizer import CharTokenizer
from lstm_text.train import make_optimizer

CHARS = string.ascii_letters + string.digits + " .\n"  # 65 distinct characters: vocab 67 with PAD and UNK


def machine() -> dict:
    cpu = platform.processor()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        names = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")]
        cpu = names[0] if names else cpu
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": cpu or platform.machine(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def best_time(fn, reps: int) -> float:
    """Seconds of the fastest of ``reps`` calls, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def gemm_gflops(m: int, k: int, n: int, reps: int) -> float:
    a, b, c = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    flops = 2 * m * k * n
    inner = max(1, round(1e8 / flops))  # small products: repeat so the clock's resolution does not matter
    return flops * inner / best_time(lambda: [torch.mm(a, b, out=c) for _ in range(inner)], reps) / 1e9


def layer_inputs(cfg: ModelConfig) -> list[int]:
    return [cfg.embed if i == 0 else cfg.hidden for i in range(cfg.layers)]


def head_products(cfg: ModelConfig) -> list[tuple[int, int]]:
    """(in, out) of the products after the LSTM: the H -> E projection (tied, H != E), then the head."""
    proj = cfg.tie_weights and cfg.hidden != cfg.embed
    return ([(cfg.hidden, cfg.embed)] if proj else []) + [
        (cfg.embed if cfg.tie_weights else cfg.hidden, cfg.vocab_size)
    ]


def matmul_params(cfg: ModelConfig) -> int:
    """Weights multiplied once per token: 4H x (in + H) per layer, plus the projection and the head."""
    lstm = sum(4 * cfg.hidden * (i + cfg.hidden) for i in layer_inputs(cfg))
    return lstm + sum(i * o for i, o in head_products(cfg))


def train_rate(cfg: ModelConfig, tcfg: TrainConfig, warmup: int, steps: int) -> float:
    torch.manual_seed(0)
    model = LSTMModel(cfg).train()
    opt = make_optimizer(model, tcfg)
    x = torch.randint(2, cfg.vocab_size, (tcfg.batch_size, tcfg.seq_len + 1))  # one window, reused
    inp, tgt = x[:, :-1].contiguous(), x[:, 1:].contiguous()  # (B, T) each
    state = None

    def step():
        nonlocal state
        opt.zero_grad(set_to_none=True)
        _, loss, state = model(inp, tgt, state)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        state = [(h.detach(), c.detach()) for h, c in state]

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * tcfg.batch_size * tcfg.seq_len / (time.perf_counter() - t)


def generate_rate(cfg: ModelConfig, n: int, reps: int) -> float:
    torch.manual_seed(0)
    model, tok = LSTMModel(cfg), CharTokenizer(list(CHARS))
    gcfg = GenerateConfig(max_tokens=n, seed=0)
    return n / best_time(lambda: sum(1 for _ in sample_tokens(model, tok, "\n", gcfg, 1)), reps)


@torch.inference_mode()
def bound_rate(cfg: ModelConfig, n: int, reps: int) -> float:
    """Tokens/s if a step cost only its products: addmm of [1, in+H] x [in+H, 4H] per layer, then the head."""
    shapes = [(i + cfg.hidden, 4 * cfg.hidden) for i in layer_inputs(cfg)] + head_products(cfg)
    prods = [(torch.randn(o), torch.randn(1, i), torch.randn(i, o), torch.empty(1, o)) for i, o in shapes]

    def run():
        for _ in range(n):
            for b, x, w, out in prods:
                torch.addmm(b, x, w, out=out)

    return n / best_time(run, reps)


class NaiveLM(nn.Module):
    """pytorch/examples word_language_model's RNNModel, LSTM only: seq-first, one multi-layer nn.LSTM."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.encoder = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.rnn = nn.LSTM(cfg.embed, cfg.hidden, cfg.layers)
        self.decoder = nn.Sequential(*(nn.Linear(i, o) for i, o in head_products(cfg)))  # same products

    def forward(self, x: torch.Tensor, hidden):  # x (T, B)
        out, hidden = self.rnn(self.encoder(x), hidden)  # (T, B, H)
        return self.decoder(out), hidden  # (T, B, V)


def naive_rate(cfg: ModelConfig, n: int, reps: int) -> float:
    torch.manual_seed(0)
    model = NaiveLM(cfg).eval()

    def run():  # as word_language_model/generate.py: one call per token, exp(logits) into multinomial
        inp, hidden = torch.randint(cfg.vocab_size, (1, 1)), None
        with torch.no_grad():
            for _ in range(n):
                out, hidden = model(inp, hidden)
                inp.fill_(torch.multinomial(out.squeeze().exp(), 1)[0])

    return n / best_time(run, reps)


def table(title: str, cols: list[str], rows: list[list[str]]) -> Table:
    t = Table(title=title)
    for col in cols:
        t.add_column(col, justify="right")
    for row in rows:
        t.add_row(*row)
    return t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("layers", "hidden", "embed", "batch-size", "seq-len", "threads"):
        p.add_argument(f"--{flag}", type=int)
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "results.json")
    p.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs; figures are noise")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    given = {k: v for k, v in vars(a).items() if v is not None}
    cfg = ModelConfig(vocab_size=len(CHARS) + 2, **{k: given[k] for k in ("layers", "hidden", "embed") if k in given})
    small = {"batch_size": 8, "seq_len": 32} if a.quick else {}  # smoke check: a small batch unless given
    tcfg = TrainConfig(**{**small, **{k: given[k] for k in ("batch_size", "seq_len") if k in given}})
    reps, warmup, steps, n_gen = (1, 1, 2, 20) if a.quick else (5, 3, 10, 500)
    B, T, H = tcfg.batch_size, tcfg.seq_len, cfg.hidden
    label = lambda c: f"{c.layers}x{c.hidden} e{c.embed}"  # noqa: E731

    gemm = {"1024x1024x1024": gemm_gflops(1024, 1024, 1024, reps)}
    for i in sorted(set(layer_inputs(cfg))):
        gemm[f"{B * T}x{i}x{4 * H} (input)"] = gemm_gflops(B * T, i, 4 * H, reps)
    gemm[f"{B}x{H}x{4 * H} (recurrent)"] = gemm_gflops(B, H, 4 * H, reps)
    peak = gemm["1024x1024x1024"]
    tok_s = train_rate(cfg, tcfg, warmup, steps)
    gflops = tok_s * 6 * matmul_params(cfg) / 1e9
    gen = []
    big = dataclasses.replace(cfg, layers=2, hidden=512, embed=512)
    for c in [cfg] + ([big] if big != cfg else []):
        g, bound, naive = (f(c, n_gen, reps) for f in (generate_rate, bound_rate, naive_rate))
        gen.append(
            {
                "model": label(c),
                "tokens_per_s": g,
                "bound_tokens_per_s": bound,
                "naive_tokens_per_s": naive,
                "share_of_bound": g / bound,
                "naive_share_of_bound": naive / bound,
            }
        )
    m = machine()

    con = Console(width=max(Console().width, 100))  # piped output defaults to 80 columns
    con.print(
        f"[bold]{m['cpu']}[/], {m['platform']}, torch {m['torch']}, {m['threads']} threads"
        + ("  [yellow](--quick: figures are noise)[/]" if a.quick else "")
    )
    con.print(
        table(
            "fp32 GEMM (m x k x n)",
            ["shape", "GFLOP/s", "/ square"],
            [[k, f"{v:.1f}", f"{v / peak:.2f}"] for k, v in gemm.items()],
        )
    )
    con.print(
        table(
            f"training, {label(cfg)}, batch {B} x {T}",
            ["tokens/s", "matmul params/token", "GFLOP/s (6 per param)", "/ gemm_gflops"],
            [[f"{tok_s:,.0f}", f"{matmul_params(cfg):,}", f"{gflops:.1f}", f"{gflops / peak:.2f}"]],
        )
    )
    con.print(
        table(
            "generation, batch 1 (tokens/s)",
            ["model", "sample_tokens", "matmul bound", "naive nn.LSTM", "project/bound", "naive/bound"],
            [
                [g["model"], *(f"{v:,.0f}" for v in list(g.values())[1:4]), *(f"{v:.2f}" for v in list(g.values())[4:])]
                for g in gen
            ],
        )
    )
    res = {
        "machine": m,
        "quick": a.quick,
        "model": cfg.to_dict(),
        "batch_size": B,
        "seq_len": T,
        "gemm_gflops": peak,
        "gemm_shapes_gflops": gemm,
        "train": {
            "tokens_per_s": tok_s,
            "matmul_params": matmul_params(cfg),
            "gflops": gflops,
            "share_of_gemm": gflops / peak,
        },
        "generate": gen,
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(res, indent=2) + "\n")
    con.print(f"figures written to {a.json}")


if __name__ == "__main__":
    main()

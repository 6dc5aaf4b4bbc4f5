"""Speed measurements, each a ratio taken in the same run (these machines are shared and noisy).

matmul GFLOP/s of this machine (fp32 GEMM); training tokens/s and its FLOP/s as a share of GEMM; batch-1
generation tokens/s next to the matmul-only bound of the same shapes and a naive nn.LSTM-per-token loop
(pytorch/examples word_language_model); classification lines/s. ``lstm-text bench`` renders them and
``benchmarks/speed.py`` keeps the results file. Library code: returns numbers, never prints.
"""

from __future__ import annotations

import dataclasses
import platform
import string
import subprocess
import time
from pathlib import Path

import torch
import torch.nn as nn

from .config import GenerateConfig, ModelConfig, TrainConfig
from .infer.generate import sample_tokens
from .model import LSTMModel
from .tokenizer import CharTokenizer
from .training.loop import make_optimizer

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


def lstm_params(cfg: ModelConfig) -> int:
    """LSTM weights multiplied once per token: 4H x (in + H) per layer."""
    return sum(4 * cfg.hidden * (i + cfg.hidden) for i in layer_inputs(cfg))


def matmul_params(cfg: ModelConfig) -> int:
    """Weights multiplied once per token: the LSTM's, plus the projection and the head."""
    return lstm_params(cfg) + sum(i * o for i, o in head_products(cfg))


def train_step(cfg: ModelConfig, tcfg: TrainConfig):
    """A function doing one training step of a fresh model exactly as training runs it (``Trainer.train_step``:
    scheduled learning rate, forward, backward, clip, guarded AdamW step, state carried), on one window."""
    from .data.batches import Ids
    from .data.tokens import TokenSet
    from .training.lm import LMTask
    from .training.loop import Trainer
    from .training.runtime import Runtime

    torch.manual_seed(0)
    model = LSTMModel(cfg).train()
    ids = torch.randint(2, cfg.vocab_size, (tcfg.batch_size * (tcfg.seq_len + 1),)).tolist()  # one window
    tokens = TokenSet(Ids(ids), Ids(ids[:2]), tokenizer=None, val_chars=2, fingerprint="")
    task = LMTask(tokens, tcfg.batch_size, tcfg, [], Runtime(), cancelled=None)
    opt = make_optimizer(model, tcfg)
    trainer = Trainer(task, model, opt, tcfg, out=Path("."), tokenizer=None, runtime=Runtime(), run_state={})
    batch = task.batch(0, 0)  # (B, T) inputs and targets, reused
    return lambda: trainer.train_step(batch)


def train_rate(cfg: ModelConfig, tcfg: TrainConfig, warmup: int, steps: int) -> float:
    step = train_step(cfg, tcfg)
    for _ in range(warmup):
        step()
    window = max(1, steps // 4)  # the fastest of four windows, as for every other figure here

    def run():
        for _ in range(window):
            step()

    return window * tcfg.batch_size * tcfg.seq_len / best_time(run, 3)


def generate_rate(cfg: ModelConfig, n: int, reps: int, quantize: str = "") -> float:
    torch.manual_seed(0)
    model, tok = LSTMModel(cfg), CharTokenizer(list(CHARS))
    gcfg = GenerateConfig(max_tokens=n, seed=0)
    return n / best_time(lambda: sum(1 for _ in sample_tokens(model, tok, "\n", gcfg, 1, quantize)), reps)


def first_token_seconds(cfg: ModelConfig, prompt_chars: int, reps: int) -> tuple[float, float]:
    """Seconds to the first new token after a prompt: read by the sequence path (as ``generate`` does), and
    read one step at a time (as a per-token loop would)."""
    from .infer.step import StepModel

    torch.manual_seed(0)
    model, tok = LSTMModel(cfg).eval(), CharTokenizer(list(CHARS))
    prompt = (CHARS * (prompt_chars // len(CHARS) + 1))[:prompt_chars]
    gcfg = GenerateConfig(max_tokens=1, seed=0)
    seq = best_time(lambda: next(sample_tokens(model, tok, prompt, gcfg, 1)), reps)
    ids = torch.tensor([tok.encode(prompt)])
    with torch.inference_mode():
        stepped = best_time(lambda: StepModel(model).run(ids), reps)
    return seq, stepped


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


def classify_rate(clf, tokenizer, lines: list[str], reps: int = 3, gate=None) -> float:
    """Lines/s of ``classify_stream`` over ``lines`` (model loaded, start-up excluded); ``gate``: with each line's
    language (``Model.gate``), as ``classify`` runs."""
    from .infer.classifier import classify_stream

    return len(lines) / best_time(lambda: sum(1 for _ in classify_stream(clf, tokenizer, lines, gate=gate)), reps)


def cli_seconds(model: str, lines: list[str], reps: int = 3) -> float:
    """Seconds of a whole ``lstm-text classify`` process over ``lines``: start-up, imports and loading included."""
    import os
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "lstm_text", "classify", "--model", model, f.name]
    try:
        return best_time(lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True), reps)
    finally:
        os.unlink(f.name)


def sst_like_lines(n: int, seed: int = 0) -> list[str]:
    """Synthetic lines shaped like SST sentences (about 19 lower-cased words) when no data file is given."""
    import random

    rng = random.Random(seed)
    words = (
        "the film is a movie with its story and characters that are n't as good funny moving dull "
        "boring charming witty , . 's performances director script plot"
    ).split()
    return [" ".join(rng.choice(words) for _ in range(max(3, int(rng.gauss(19, 8))))) for _ in range(n)]


def run(
    *,
    cfg: ModelConfig | None = None,
    tcfg: TrainConfig | None = None,
    quick: bool = False,
    classifier=None,
    lines: list[str] | None = None,
) -> dict:
    """Every figure, measured in this one process. ``classifier`` is a loaded ``lstm_text.api.Model``."""
    cfg = cfg or ModelConfig(vocab_size=len(CHARS) + 2)
    tcfg = tcfg or (TrainConfig(batch_size=8, seq_len=32) if quick else TrainConfig())
    reps, warmup, steps, n_gen = (1, 1, 2, 20) if quick else (5, 3, 20, 1000)
    B, T, H = tcfg.batch_size, tcfg.seq_len, cfg.hidden
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
        g8 = generate_rate(c, n_gen, reps, "int8")
        ttft, ttft_stepped = first_token_seconds(c, 1000, reps)
        gen.append(
            {
                "model": f"{c.layers}x{c.hidden} e{c.embed}",
                "first_token_s_1000_chars": ttft,
                "first_token_s_1000_chars_stepped": ttft_stepped,
                "tokens_per_s": g,
                "int8_tokens_per_s": g8,
                "bound_tokens_per_s": bound,
                "naive_tokens_per_s": naive,
                "share_of_bound": g / bound,
                "int8_share_of_bound": g8 / bound,
                "naive_share_of_bound": naive / bound,
            }
        )
    res = {
        "machine": machine(),
        "quick": quick,
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
    if classifier is not None:
        from .infer.classifier import Classifier

        lines = lines or sst_like_lines(500 if quick else 5000)
        r = 1 if quick else 3
        int8 = Classifier(classifier.cfg, classifier.ckpt.weights, quantize="int8")
        name = classifier.meta["path"]
        one, whole = cli_seconds(name, lines[:1], r), cli_seconds(name, lines, r)
        res["classify"] = {
            "lines": len(lines),
            "lines_per_s": classify_rate(classifier.classifier, classifier.tokenizer, lines, r),
            "int8_lines_per_s": classify_rate(int8, classifier.tokenizer, lines, r),
            "cli_lines_per_s": len(lines) / whole,
            "cli_one_line_s": one,
            "threads": classifier.classifier.threads,
        }
    return res

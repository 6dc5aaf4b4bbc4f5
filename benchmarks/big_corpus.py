"""Scale: a corpus far larger than a tokenizer's working set, tokenized into token files and trained on.

Builds a corpus of ``--gb`` GB from ../shared/data (IMDB's 50,000 unlabelled reviews, repeated, and
tiny-shakespeare) and measures, in one run:

- the rate of simply reading the file, beside lstm-text's tokenization into token files (char and BPE, all
  cores, hashing and vocabulary passes included), beside SentencePiece's own ``encode`` in one process;
- peak resident memory of the tokenizing command and of a short training run on the token files;
- time from process start to the first training step on a second run (cache hit);
- data-parallel training: tokens/s of 2 processes under torchrun (gloo) against 1 process with the doubled
  batch, on tiny-shakespeare.

Run it alone on the machine (it times things): ``python benchmarks/big_corpus.py [--gb 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("LSTM_TEXT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PY = sys.executable

PREPARE = r"""
import json, resource, sys, time
from lstm_text.data.tokens import prepare
t = time.perf_counter()
ts = prepare([sys.argv[1]], kind=sys.argv[2], vocab_size=int(sys.argv[3]), val_fraction=0.1)
dt = time.perf_counter() - t
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": dt, "info": ts.info, "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "workers_mb": kids / 1024}))
"""

FIRST_STEP = r"""
import json, sys, time
t0 = float(sys.argv[3])
from lstm_text.config import TrainConfig
from lstm_text.training.lm import train_lm
seen = {}
def cb(event, info):
    if event == "step" and "first" not in seen:
        seen["first"] = time.time() - t0
cfg = TrainConfig(max_steps=20, tokenizer=sys.argv[4])
train_lm([sys.argv[1]], sys.argv[2], model={"layers": 1, "hidden": 128}, train=cfg, callback=cb)
print(json.dumps(seen))
"""


def build(path: Path, gb: float) -> None:
    """IMDB's unlabelled reviews repeated, tiny-shakespeare between the copies, to ``gb`` GB."""
    if path.exists() and abs(path.stat().st_size - gb * 1e9) < 1e8:
        return
    imdb = (DATA / "imdb" / "unsup.txt").read_bytes()
    ts = (DATA / "tinyshakespeare" / "input.txt").read_bytes()
    with open(path, "wb") as f:
        while f.tell() < gb * 1e9:
            f.write(imdb)
            f.write(ts)


def read_rate(path: Path) -> float:
    t = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(4 << 20):
            pass
    return path.stat().st_size / 1e6 / (time.perf_counter() - t)


def sp_encode_rate(path: Path, tokenizer_json: Path, mb: int = 64) -> float:
    """SentencePiece's own encode of ``mb`` MB of the corpus in this one process, with lstm-text's BPE model."""
    from lstm_text.tokenizer import tokenizer_from_dict

    tok = tokenizer_from_dict(json.loads(tokenizer_json.read_text()))
    with open(path, "rb") as f:
        text = f.read(mb << 20).decode("utf-8", "ignore")
    lines = text.split("\n")
    t = time.perf_counter()
    tok.sp.encode(lines, num_threads=1)  # its fastest way: a batch of lines (a whole text is 4x slower)
    return len(text.encode()) / 1e6 / (time.perf_counter() - t)


def run_json(code: str, *args, env) -> dict:
    r = subprocess.run([PY, "-c", code, *map(str, args)], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def peak_of(cmd: list[str], env) -> tuple[float, float]:
    """(seconds, peak resident MB of the largest process) of a command run to the end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"failed: {' '.join(cmd)}: {r.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return time.perf_counter() - t, max(peak, before) / 1024


def torchrun_rates(work: Path, env) -> dict:
    """tokens/s of 1 process (batch 64) and 2 processes (batch 32 each) on tiny-shakespeare, same steps."""
    out = {}
    for procs, batch in ((1, 64), (2, 32)):
        run = work / f"ddp{procs}"
        shutil.rmtree(run, ignore_errors=True)
        args = ["train", "tinyshakespeare", "--out", str(run), "--max-steps", "60", "--batch-size", str(batch)]
        args += ["--quiet", "--seed", "0"]
        if procs == 1:
            cmd = [PY, "-m", "lstm_text", *args]
        else:
            cmd = [PY, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}", "-m", "lstm_text"]
            cmd += args
        e = {**env, "OMP_NUM_THREADS": str(2 // procs)}
        subprocess.run(cmd, check=True, capture_output=True, env=e)
        info = json.loads(subprocess.run([PY, "-m", "lstm_text", "info", str(run), "--json"], capture_output=True,
                                         text=True, env=env, check=True).stdout)["training"]  # fmt: skip
        out[procs] = {"tokens_per_s": info["tokens"] / info["seconds"], "best_val_bpc": info["best_val_bpc"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lstm-text-big")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = args.work / f"corpus-{args.gb:g}gb.txt"
    build(corpus, args.gb)
    cache = args.work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "LSTM_TEXT_CACHE": str(cache), "LSTM_TEXT_DATA": str(DATA)}
    mb = corpus.stat().st_size / 1e6
    res = {"corpus_mb": mb, "cores": os.cpu_count(), "machine": f"{platform.machine()} {platform.processor()}".strip()}
    res["read_mb_s"] = read_rate(corpus)
    for kind, vocab in (("char", 0), ("bpe", 2048)):
        r = run_json(PREPARE, corpus, kind, vocab, env=env)
        r["mb_s"] = mb / r["seconds"]
        train_s, train_peak = peak_of(
            [PY, "-m", "lstm_text", "train", str(corpus), "--out", str(args.work / f"run-{kind}"), "--tokenizer", kind,
             "--max-steps", "20", "--layers", "1", "--hidden", "128", "--quiet"], env,
        )  # fmt: skip
        shutil.rmtree(args.work / f"run-{kind}", ignore_errors=True)
        first = run_json(FIRST_STEP, corpus, args.work / f"first-{kind}", time.time(), kind, env=env)
        shutil.rmtree(args.work / f"first-{kind}", ignore_errors=True)
        res[kind] = {**r, "train_peak_mb": train_peak, "train_seconds": train_s, "first_step_s": first["first"]}
    tok_json = next((cache / "tokenizers").glob("*.json"), None)
    bpe_jsons = [p for p in (cache / "tokenizers").glob("*.json") if '"bpe"' in p.read_text()[:40]]
    res["sp_encode_mb_s"] = sp_encode_rate(corpus, bpe_jsons[0] if bpe_jsons else tok_json)
    res["ddp"] = torchrun_rates(args.work, env)
    print(f"corpus {mb:,.0f} MB on {res['cores']} cores ({res['machine']}); reading it: {res['read_mb_s']:,.0f} MB/s")
    head = f"{'tokenize MB/s':>14} {'peak MB tokenizing':>19} {'peak MB training':>17} {'first step (cached)':>20}"
    print(f"{'':6} {head}")
    for kind in ("char", "bpe"):
        r = res[kind]
        peak = max(r["self_mb"], r["workers_mb"])
        row = f"{r['mb_s']:>14,.1f} {peak:>19,.0f} {r['train_peak_mb']:>17,.0f} {r['first_step_s']:>19.1f}s"
        print(f"{kind:6} {row}")
    sample = res["bpe"]["info"].get("sample_bytes", 0) / 1e6
    sp, ours = res["sp_encode_mb_s"], res["bpe"]["mb_s"]
    print(
        f"SentencePiece's own encode (a batch of lines, one thread): {sp:,.1f} MB/s; lstm-text bpe on all cores, "
        f"every pass included: {ours:,.1f} MB/s ({ours / sp:.2f}x); tokenizer trained on a {sample:,.1f} MB sample"
    )
    d = res["ddp"]
    one, two = d[1]["tokens_per_s"], d[2]["tokens_per_s"]
    print(f"torchrun, tiny-shakespeare, 60 steps, global batch 64: 1 process {one:,.0f} tok/s (2 threads), "
          f"2 processes {two:,.0f} tok/s (1 thread each): {two / one:.2f}x")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

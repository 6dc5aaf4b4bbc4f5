"""Load test of `lstm-text serve` on loopback, bounded in time (about 3 minutes with the defaults).

Starts a server with the built-in `sentiment` classifier and a language model of the default configuration
(1 x 512; trained for two steps on synthetic text unless --lm is given: speed depends on the shapes only),
then drives it with a small asyncio HTTP/1.1 client on keep-alive connections (raw sockets: client and server
share this machine's cores, so the client must cost little) and prints Markdown tables:

- classify: requests/s, lines/s, p50/p99 latency and texts per batch at 1, 16 and 64 concurrent clients, 1 and
  32 texts per request; next to `lstm-text classify` (a whole process) and in-process classify on the same lines
- generate: aggregate tokens/s at 1, 4, 16 and 64 concurrent streams against one stream, time to first token
  and the time between streamed events (inter-token latency: under load one event may carry several tokens)
  p50/p99; next to in-process `Model.generate` (no HTTP)
- overload: 512 clients at once, backing off for Retry-After: the intended 503s and any other error
- memory: the server's resident memory sampled every second over a mixed 60 s run

    python benchmarks/serve_load.py                       # ~3 minutes
    python benchmarks/serve_load.py --seconds 2 --rss-seconds 10 --json /tmp/serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

HOST = "127.0.0.1"


class Conn:
    """One keep-alive HTTP/1.1 connection: JSON POSTs, plain or chunked (server-sent events) answers."""

    def __init__(self, reader, writer, port):
        self.reader, self.writer, self.port = reader, writer, port

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(*await asyncio.open_connection(HOST, port), port)

    def close(self) -> None:
        self.writer.close()

    async def send(self, path: str, body: dict) -> tuple[int, dict]:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        return int(lines[0].split()[1]), headers

    async def chunks(self, headers: dict):
        """The body's pieces: one for Content-Length, each chunk of a chunked answer as it arrives."""
        if "content-length" in headers:
            yield await self.reader.readexactly(int(headers["content-length"]))
            return
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            yield (await self.reader.readexactly(size + 2))[:-2]
        await self.reader.readline()

    async def post(self, path: str, body: dict) -> tuple[int, bytes, dict]:
        status, headers = await self.send(path, body)
        return status, b"".join([c async for c in self.chunks(headers)]), headers


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as r:
        return r.read().decode()


def metric(port: int, name: str) -> float:
    for line in get(port, "/metrics").splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
    return kb / 1024


async def classify_load(port: int, lines: list[str], clients: int, per_request: int, seconds: float) -> dict:
    """``clients`` connections sending ``per_request`` texts per request for ``seconds``."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: Counter = Counter()
    picks = itertools.count()
    stop_at = time.perf_counter() + seconds

    async def client():
        conn = None
        while time.perf_counter() < stop_at:
            k = next(picks) * per_request % len(lines)
            texts = (lines[k : k + per_request] + lines)[:per_request]
            t = time.perf_counter()
            try:
                conn = conn or await Conn.open(port)
                status, body, headers = await conn.post("/v1/classify", {"texts": texts})
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                errors[type(e).__name__] += 1
                conn = None
                await asyncio.sleep(0.05)
                continue
            statuses[status] += 1
            if status == 200:
                latencies.append(time.perf_counter() - t)
                if body.count(b'"label"') != per_request:
                    errors["wrong answer"] += 1
            elif status == 503:  # intended under overload: back off as told
                await asyncio.sleep(float(headers.get("retry-after", 1)))
        if conn:
            conn.close()

    batches0 = metric(port, "lstm_text_classify_batch_texts_count")
    texts0 = metric(port, "lstm_text_classify_batch_texts_sum")
    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    batches = metric(port, "lstm_text_classify_batch_texts_count") - batches0
    ok = statuses[200]
    return {
        "clients": clients,
        "texts_per_request": per_request,
        "requests_per_s": ok / elapsed,
        "lines_per_s": ok * per_request / elapsed,
        "p50_ms": 1000 * pct(latencies, 0.50),
        "p99_ms": 1000 * pct(latencies, 0.99),
        "texts_per_batch": (metric(port, "lstm_text_classify_batch_texts_sum") - texts0) / max(batches, 1),
        "status_503": statuses[503],
        "other_errors": sum(errors.values()) + sum(v for k, v in statuses.items() if k not in (200, 503)),
    }


async def generate_load(port: int, streams: int, seconds: float, max_tokens: int) -> dict:
    """``streams`` connections each streaming /v1/generate answers of ``max_tokens`` back to back."""
    tokens, first, gaps, errors = [0], [], [], Counter()
    stop_at = time.perf_counter() + seconds

    async def stream(k: int):
        conn = await Conn.open(port)
        while time.perf_counter() < stop_at:
            body = {"prompt": "the film ", "max_tokens": max_tokens, "temperature": 0.8, "stream": True}
            t = time.perf_counter()
            status, headers = await conn.send("/v1/generate", body)
            if status != 200:
                errors[status] += 1
                [c async for c in conn.chunks(headers)]
                await asyncio.sleep(1)
                continue
            last, seen = b"", t
            async for chunk in conn.chunks(headers):
                now = time.perf_counter()
                if not last:
                    first.append(now - t)
                elif b"event: text" in chunk:
                    gaps.append(now - seen)
                last, seen = chunk, now
            done = json.loads(last.split(b"data: ", 1)[1])
            tokens[0] += done["usage"]["completion_tokens"]
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(stream(k) for k in range(streams)))
    elapsed = time.perf_counter() - t0
    return {
        "streams": streams,
        "tokens_per_s": tokens[0] / elapsed,
        "per_stream_tokens_per_s": tokens[0] / elapsed / streams,
        "ttft_p50_ms": 1000 * pct(first, 0.5),
        "ttft_p99_ms": 1000 * pct(first, 0.99),
        "itl_p50_ms": 1000 * pct(gaps, 0.5),
        "itl_p99_ms": 1000 * pct(gaps, 0.99),
        "answers": len(first),
        "other_errors": sum(errors.values()),
    }


async def memory_run(port: int, pid: int, lines: list[str], seconds: float, max_tokens: int) -> dict:
    """16 classify clients (32 texts each) and 4 generation streams for ``seconds``, RSS sampled each second."""
    samples: list[float] = []

    async def sample():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            samples.append(rss_mb(pid))
            await asyncio.sleep(1)

    c, g, _ = await asyncio.gather(
        classify_load(port, lines, 16, 32, seconds), generate_load(port, 4, seconds, max_tokens), sample()
    )
    tenth = max(1, len(samples) // 6)
    return {
        "seconds": seconds,
        "rss_first_mb": samples[0],
        "rss_max_mb": max(samples),
        "rss_last_mb": samples[-1],
        "rss_drift_mb": statistics.mean(samples[-tenth:]) - statistics.mean(samples[:tenth]),
        "classify_lines_per_s": c["lines_per_s"],
        "generate_tokens_per_s": g["tokens_per_s"],
        "other_errors": c["other_errors"] + g["other_errors"],
        "status_503": c["status_503"],
    }


def default_lm(tmp: str) -> str:
    """A language model of the default configuration, trained for two steps (speed depends on shapes only)."""
    import lstm_text
    from lstm_text.bench import sst_like_lines

    corpus = Path(tmp) / "corpus.txt"
    corpus.write_text("\n".join(sst_like_lines(3000, seed=1)) + "\n", encoding="utf-8")
    lstm_text.train(str(corpus), f"{tmp}/lm", max_steps=2, device="cpu")
    return f"{tmp}/lm"


def table(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    out = ["| " + " | ".join(h for h, _, _ in cols) + " |", "|" + " --- |" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(format(r[k], f) for _, k, f in cols) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lm", help="language model to serve (default: the default configuration, trained 2 steps)")
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds per measured cell")
    ap.add_argument("--rss-seconds", type=float, default=60.0, help="seconds of the memory run")
    ap.add_argument("--max-tokens", type=int, default=256, help="tokens per generation")
    ap.add_argument("--lines", type=int, default=4096, help="distinct classify lines (synthetic, SST-like)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--quantize", default="auto", help="the server's --quantize (auto: int8 generation steps)")
    args = ap.parse_args()

    import lstm_text
    from lstm_text.bench import classify_rate, cli_seconds, machine, sst_like_lines

    tmp = tempfile.mkdtemp(prefix="serve_load_")
    lm = args.lm or default_lm(tmp)
    lines = sst_like_lines(args.lines)
    res: dict = {"machine": machine(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}

    # references without HTTP, measured before the server starts (so nothing else runs meanwhile)
    clf = lstm_text.load("sentiment")
    res["classify_in_process_lines_per_s"] = classify_rate(clf.classifier, clf.tokenizer, lines)
    res["classify_cli_lines_per_s"] = len(lines) / cli_seconds("sentiment", lines, reps=1)
    m = lstm_text.load(lm)
    m.generate("the film ", max_tokens=50, seed=0)
    t = time.perf_counter()
    m.generate("the film ", max_tokens=1000, seed=0)
    res["generate_in_process_tokens_per_s"] = 1000 / (time.perf_counter() - t)
    res["lm"] = {"hidden": m.cfg.hidden, "layers": m.cfg.layers, "vocab_size": m.cfg.vocab_size}
    del clf, m

    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "lstm_text", "serve", "sentiment", f"lm={lm}", "--port", str(port)]
    cmd += ["--quantize", args.quantize]
    server = subprocess.Popen([*cmd, "--log-level", "warning"])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(port, "/healthz")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        res["rss_start_mb"] = rss_mb(server.pid)
        asyncio.run(classify_load(port, lines, 16, 32, 1.0))  # warm-up: the lookup table's rows fill in
        res["classify"] = [
            asyncio.run(classify_load(port, lines, c, k, args.seconds)) for k in (1, 32) for c in (1, 16, 64)
        ]
        asyncio.run(generate_load(port, 1, 1.0, 32))
        res["generate"] = [asyncio.run(generate_load(port, s, args.seconds, args.max_tokens)) for s in (1, 4, 16, 64)]
        res["overload"] = asyncio.run(classify_load(port, lines, 512, 32, args.seconds))
        res["memory"] = asyncio.run(memory_run(port, server.pid, lines, args.rss_seconds, args.max_tokens))
    finally:
        server.terminate()
        res["server_exit_code"] = server.wait(timeout=60)

    single = res["generate"][0]["tokens_per_s"]
    for g in res["generate"]:
        g["x_one_stream"] = g["tokens_per_s"] / single
    mach = res["machine"]
    print(f"## lstm-text serve on loopback: {mach['cpu']}, {os.cpu_count()} cores, torch {mach['torch']}\n")
    print(
        f"classify (built-in sentiment), {len(lines):,} distinct SST-like lines: in-process "
        f"{res['classify_in_process_lines_per_s']:,.0f} lines/s; `lstm-text classify` (whole process) "
        f"{res['classify_cli_lines_per_s']:,.0f} lines/s\n"
    )
    print(
        table(
            res["classify"],
            [
                ("clients", "clients", "d"),
                ("texts/request", "texts_per_request", "d"),
                ("requests/s", "requests_per_s", ",.0f"),
                ("lines/s", "lines_per_s", ",.0f"),
                ("p50 ms", "p50_ms", ".1f"),
                ("p99 ms", "p99_ms", ".1f"),
                ("texts/batch", "texts_per_batch", ".1f"),
                ("503s", "status_503", "d"),
                ("other errors", "other_errors", "d"),
            ],
        )
    )
    lmc = res["lm"]
    print(
        f"\ngenerate ({lmc['layers']} x {lmc['hidden']} LSTM, vocab {lmc['vocab_size']}), {args.max_tokens} tokens "
        f"per answer, streamed: in-process `Model.generate` {res['generate_in_process_tokens_per_s']:,.0f} tokens/s\n"
    )
    print(
        table(
            res["generate"],
            [
                ("streams", "streams", "d"),
                ("tokens/s (all)", "tokens_per_s", ",.0f"),
                ("x one stream", "x_one_stream", ".2f"),
                ("tokens/s per stream", "per_stream_tokens_per_s", ",.0f"),
                ("first token p50 ms", "ttft_p50_ms", ".1f"),
                ("first token p99 ms", "ttft_p99_ms", ".1f"),
                ("inter-token p50 ms", "itl_p50_ms", ".1f"),
                ("inter-token p99 ms", "itl_p99_ms", ".1f"),
                ("answers", "answers", "d"),
                ("other errors", "other_errors", "d"),
            ],
        )
    )
    o, mem = res["overload"], res["memory"]
    print(
        f"\noverload: 512 clients x 32 texts for {args.seconds:g} s: {o['lines_per_s']:,.0f} lines/s, "
        f"{o['status_503']} answered 503 (Retry-After: 1), {o['other_errors']} other errors"
    )
    print(
        f"memory: {mem['seconds']:g} s of 16 classify clients and 4 generation streams "
        f"({mem['classify_lines_per_s']:,.0f} lines/s, {mem['generate_tokens_per_s']:,.0f} tokens/s, "
        f"{mem['other_errors']} errors): server RSS {mem['rss_first_mb']:.0f} MB at the start, "
        f"{mem['rss_max_mb']:.0f} MB at most, {mem['rss_last_mb']:.0f} MB at the end "
        f"(last sixth minus first sixth: {mem['rss_drift_mb']:+.1f} MB); idle after start-up "
        f"{res['rss_start_mb']:.0f} MB"
    )
    print(f"server exit code after SIGTERM: {res['server_exit_code']}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

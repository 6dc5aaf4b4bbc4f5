"""benchmarks/gpu.py: its CPU dry run goes through every step and prints the table (the GPU run is the same code)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_dry_run_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--quick", "--json", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = [ln for ln in r.stdout.splitlines() if ln.startswith("| ")]
    assert table[0].startswith("| model | train tokens/s fp32 | bpc fp32 | generate tokens/s batch 1 |")
    assert [ln.split(" | ")[0] for ln in table[2:]] == ["| 1 x 64", "| 2 x 64"]  # after the head and its rule
    res = json.loads(out.read_text())
    for row in res["rows"]:
        assert row["train_fp32_tokens_per_s"] > 0 and 0 < row["bpc_fp32"] < 10
        assert row["batch1_tokens_per_s"] > 0 and row["batch64_tokens_per_s"] > 0
    assert res["classify_lines_per_s"] > 0 and "lines/s" in r.stdout

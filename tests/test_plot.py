"""``lstm-text plot`` (training curves as a PNG) and the validation sparkline of ``lstm-text info``."""

import json
import struct
import sys

import pytest

from lstm_text.cli import main
from lstm_text.plot import read_metrics
from lstm_text.ui import sparkline


def png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture()
def second_run(tmp_path, tiny_run):
    """A run directory whose log is tiny_run's with a slower, worse curve (only its metrics.jsonl is read)."""
    d = tmp_path / "slow"
    d.mkdir()
    recs = read_metrics(tiny_run)
    with open(d / "metrics.jsonl", "w") as f:
        for r in recs:
            f.write(json.dumps({**r, "elapsed": 2 * r["elapsed"] + 1, "val_bpc": r["val_bpc"] + 0.5}) + "\n")
    return d


def test_plot_overlays_runs_in_a_png_of_the_expected_size(tiny_run, second_run, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["plot", str(tiny_run), str(second_run), "-o", str(out)]) == 0
    assert png_size(out) == (1200, 800)
    assert f"wrote {out}" in capsys.readouterr().err


def test_info_shows_a_validation_sparkline(tiny_run, capsys):
    recs = read_metrics(tiny_run)
    assert len(recs) >= 2 and all({"step", "elapsed", "train_loss", "val_bpc"} <= r.keys() for r in recs)
    assert main(["info", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "val bpc curve" in ln)
    first, last = recs[0]["val_bpc"], recs[-1]["val_bpc"]
    assert sparkline([r["val_bpc"] for r in recs]) in line and f"{first:.4f} -> {last:.4f}" in line
    assert main(["info", "sentiment"]) == 0 and "curve" not in capsys.readouterr().out  # no run directory


def test_sparkline():
    assert sparkline([3.0, 2.0, 1.0]) == "█▅▁"
    assert sparkline([1.0, 1.0]) == "▁▁"
    assert len(sparkline(list(range(100)), width=20)) == 20
    assert sparkline([]) == ""


def test_plot_without_matplotlib_names_the_extra(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert main(["plot", str(tiny_run), "-o", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lstm-text[plot]" in err[0]
    assert not (tmp_path / "c.png").exists()


def test_plot_bad_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty"), "-o", str(tmp_path / "c.png")]) == 1
    assert "has no metrics.jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.jsonl").write_text('{"step": 1, "val_bpc": 3.0}\n{oops\n')
    assert main(["plot", str(bad), "-o", str(tmp_path / "c.png")]) == 1
    assert "line 2" in capsys.readouterr().err
    assert main(["plot", str(bad), "-o", str(tmp_path / "no" / "c.png")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_plot_draws_wall_clock_seconds_from_the_runs_wall_clock(tiny_run):
    from lstm_text.plot import read_metrics, time_axis

    recs = read_metrics(tiny_run)
    assert all(r["wall"] >= r["elapsed"] for r in recs)
    assert time_axis({"a": recs})[0] == "wall"
    old = [{k: v for k, v in r.items() if k != "wall"} for r in recs]  # a log written before "wall"
    assert time_axis({"a": recs, "old": old}) == ("elapsed", "training seconds (validation and saving not counted)")

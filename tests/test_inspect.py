"""``lstm-text inspect``: the gates and states are the model's own (recomputed here from the raw weights),
``--find`` ranks a planted cell first, memory time constants, the JSON, HTML and PNG outputs, bad input."""

import json
import math
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch

import lstm_text
from lstm_text import probe as ins
from lstm_text.cli import main

TEXT = 'the king said "war" (and [the queen] sang)\nold men told tales by the fire .\n'


@pytest.fixture(scope="module")
def model(tiny_run):
    return lstm_text.load(tiny_run)


def png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_gates_equal_a_recomputation_from_the_raw_weights(model):
    """PyTorch's nn.LSTM weights (gate rows i, f, g, o), stepped here in float64, give inspect's values."""
    tr = model.inspect(TEXT)
    net = model.net
    ids = torch.tensor(model.tokenizer.encode(TEXT))
    x = net.embed.weight.detach().double()[ids]  # (T, E)
    for k, lstm in enumerate(net.lstms):
        w_ih, w_hh = lstm.weight_ih_l0.detach().double(), lstm.weight_hh_l0.detach().double()
        b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().double()
        H = lstm.hidden_size
        h, c = torch.zeros(H, dtype=torch.float64), torch.zeros(H, dtype=torch.float64)
        hs = []
        for t in range(len(ids)):
            i, f, g, o = (w_ih @ x[t] + w_hh @ h + b).split(H)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, v in (("input", i), ("forget", f), ("output", o), ("cell", c), ("hidden", h)):
                got = tr.values[name][k, t]
                np.testing.assert_allclose(got, v.numpy(), rtol=1e-5, atol=2e-5, err_msg=f"{name} {k} {t}")
            hs.append(h)
        x = torch.stack(hs)  # (T, H): the next layer's input
    # the top layer equals the model's own sequence forward, and surprisal is its next-token loss in bits
    with torch.no_grad():
        top, _ = net.encode(ids[None])
        logits, _, _ = net(ids[None])
    np.testing.assert_allclose(tr.values["hidden"][-1], top[0].numpy(), atol=2e-5)
    bits = torch.nn.functional.cross_entropy(logits[0, :-1], ids[1:], reduction="none") / math.log(2)
    assert math.isnan(tr.surprisal[0])
    np.testing.assert_allclose(tr.surprisal[1:], bits.numpy(), atol=1e-4)
    assert tr.shape == (2, len(ids), 32) and tr.text == TEXT


def test_signals_per_character():
    text = 'a "b" (c[d])\nxy'
    sig = {name: ins.char_signal(text, name).tolist() for name in ins.SIGNALS}
    assert sig["quote"] == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert sig["line-position"] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2]
    assert sig["bracket-depth"] == [0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 1, 0, 0, 0, 0]
    assert sig["word-start"] == [1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0]
    assert ins.char_signal(text, "^xy").tolist() == [0] * 13 + [1, 1]  # multiline: ^ at each line start


def planted_model(path, text: str, planted: int = 5, hidden: int = 8):
    """A char LM whose cell ``planted`` holds +1 after a vowel and -1 after anything else; the others random."""
    from lstm_text.checkpoint import save_model
    from lstm_text.config import ModelConfig
    from lstm_text.model import LSTMModel
    from lstm_text.tokenizer import CharTokenizer

    tok = CharTokenizer.train(text)
    torch.manual_seed(0)
    net = LSTMModel(ModelConfig(vocab_size=tok.vocab_size, embed=8, hidden=hidden, layers=1))
    H = hidden
    with torch.no_grad():
        for p in net.lstms[0].parameters():
            p.normal_(0, 0.3)
        vowel = torch.tensor([-1.0, -1.0] + [1.0 if ch in "aeiou" else -1.0 for ch in tok.chars])
        net.embed.weight[:, 0] = vowel  # dimension 0: is this a vowel
        lstm = net.lstms[0]
        for gate, bias in ((0, 10.0), (1, -10.0), (3, 10.0)):  # input open, forget shut, output open
            row = gate * H + planted
            lstm.weight_ih_l0[row].zero_()
            lstm.weight_hh_l0[row].zero_()
            lstm.bias_ih_l0[row], lstm.bias_hh_l0[row] = bias, 0.0
        row = 2 * H + planted  # candidate: tanh(6 * vowel) = +-1
        lstm.weight_ih_l0[row].zero_()
        lstm.weight_hh_l0[row].zero_()
        lstm.weight_ih_l0[row, 0], lstm.bias_ih_l0[row], lstm.bias_hh_l0[row] = 6.0, 0.0, 0.0
    save_model(path, net, tok)
    return path


def test_find_ranks_a_planted_cell_first(tmp_path, corpus_text, capsys):
    text = corpus_text[:3000]
    path = planted_model(tmp_path / "planted.safetensors", text)
    tr = lstm_text.load(path).inspect(text)
    found = ins.find(tr, "[aeiou]", top=3)
    assert (found["top"][0]["layer"], found["top"][0]["cell"]) == (0, 5)
    assert found["top"][0]["r"] > 0.99 and abs(found["top"][1]["r"]) < 0.9
    assert main(["inspect", str(path), text[:400], "--find", "[aeiou]", "--top", "3"]) == 0
    out = capsys.readouterr().out
    rows = [re.findall(r"[+-]?\d+(?:\.\d+)?", ln) for ln in out.splitlines() if "│" in ln]
    rows = [r for r in rows if len(r) == 4]
    assert len(rows) == 3 and rows[0][:3] == ["1", "0", "5"] and float(rows[0][3]) > 0.99


def test_memory_time_constants_and_png(model, tmp_path, capsys):
    tr = model.inspect(TEXT * 3)
    tau = ins.time_constants(tr)
    f = tr.values["forget"].astype(np.float64).mean(1)
    np.testing.assert_allclose(tau, -1 / np.log(f), rtol=1e-5)
    counts = ins.memory_histogram(tau)
    assert counts.shape == (2, len(ins.MEMORY_EDGES) - 1) and counts.sum(1).tolist() == [32, 32]
    png = tmp_path / "memory.png"
    assert main(["inspect", str(model.meta["path"]), TEXT, "--memory", "--memory-png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "memory of 64 cells" in out and "tau (tokens)" in out
    assert png_size(png) == (800, 500)
    # the untrained baseline: forget bias 1 everywhere, so nearly every cell remembers about 1 / -ln(sigmoid(1))
    base = ins.time_constants(model.inspect(TEXT, untrained=True))
    assert abs(float(np.median(base)) - (-1 / math.log(1 / (1 + math.exp(-1))))) < 1.0


def test_json_and_terminal_views(model, capsys):
    run = str(model.meta["path"])
    assert main(["inspect", run, TEXT, "--json", "--find", "word-start"]) == 0
    d = json.loads(capsys.readouterr().out)
    T = len(TEXT)
    assert d["shape"] == {"layers": 2, "tokens": T, "cells": 32}
    assert np.asarray(d["forget"]).shape == (2, T, 32) and len(d["surprisal_bits"]) == T
    assert d["surprisal_bits"][0] is None and d["find"]["signal"] == "word-start" and len(d["find"]["top"]) == 10
    assert main(["inspect", run, TEXT, "--cell", "3", "--layer", "0", "--gate", "forget"]) == 0
    c = capsys.readouterr()
    assert c.out.strip().startswith("the king") and "layer 0 cell 3 forget" in c.err
    assert main(["inspect", run, TEXT]) == 0
    assert "mean" in capsys.readouterr().err


def test_html_page_is_self_contained(model, tmp_path, capsys):
    page = tmp_path / "page.html"
    assert main(["inspect", str(model.meta["path"]), TEXT, "--html", str(page), "--find", "quote"]) == 0
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "http://" not in html and "https://" not in html
    assert " src=" not in html and "<link" not in html
    assert '"name": "quote"' in html and "celllist" in html


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["{run}", "abc", "--cell", "32"], "--cell 32 is out of range"),
        (["{run}", "abc", "--cell", "-1"], "--cell -1 is out of range"),
        (["{run}", "abc", "--layer", "2"], "--layer 2 is out of range"),
        (["{run}", ""], "empty"),
        (["{run}"], "empty"),
        (["{run}", "abc", "--find", "("], "regular expression"),
        (["{run}", "abc def", "--find", "quote"], "the same value everywhere"),
        (["{run}", "abc", "--find", "xyz"], "no match"),
        (["{run}", "abc", "--top", "0"], "--top"),
        (["sentiment", "a fine film"], "bidirectional"),
        (["{run}", "abc", "--html", "/no/such/dir/p.html"], "no such directory"),
    ],
)
def test_bad_input_is_one_line(model, capsys, args, fragment):
    rc = main(["inspect"] + [a.format(run=model.meta["path"]) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("/usr/bin/chromium"), reason="needs Debian's chromium (/usr/bin/chromium)")
def test_html_page_renders_in_chromium_without_errors(model, tmp_path):
    page = tmp_path / "page.html"
    assert main(["inspect", str(model.meta["path"]), TEXT * 4, "--html", str(page), "--find", "word-start"]) == 0
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=3000",
        "--dump-dom",
    ]
    r = subprocess.run(["/usr/bin/chromium", *flags, page.as_uri()], capture_output=True, text=True, timeout=120)
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
    dom = r.stdout
    assert f'data-rendered="{4 * len(TEXT)}"' in dom  # the script ran to its end
    assert dom.count('<span data-t="') == 4 * len(TEXT) and "background: rgb(" in dom  # every token coloured
    assert "<polyline" in dom and dom.count("<li") >= 10  # the plot and the ranked cell list

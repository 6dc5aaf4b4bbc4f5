"""``lstm-text inspect --html``: one self-contained page (inline CSS, JS and SVG; nothing fetched) that shows a
``probe.Trace``: the text coloured by a selectable layer, cell and gate, each token's gate values on hover,
a plot of the cell over the text, and the cells ranked by how well they track a ``--find`` signal.

The arrays travel as base64 bytes, one per value (gates: 0..1 in 1/255 steps; states: +-1 of each cell's
largest |value| in 1/127 steps), so a 3,000-token page of a 512-cell model stays a few megabytes.
"""

from __future__ import annotations

import base64
import html
import json
import math

import numpy as np

from .probe import QUANTITIES, Trace

MAX_TOKENS = 3_000  # tokens on one page: the page holds L x T x H x 5 bytes
GATES = ("input", "forget", "output")


def _encode(values: np.ndarray, signed: bool) -> tuple[str, list[float]]:
    """One layer's (T, H) values as base64 uint8 and per-cell scales."""
    if signed:
        scale = np.maximum(np.abs(values).max(0), 1e-6)  # (H,)
        q = np.rint(values / scale * 127) + 128
    else:
        scale = np.ones(values.shape[1])
        q = np.rint(values * 255)
    q = np.clip(q, 0, 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii"), [round(float(s), 5) for s in scale]


def page(
    trace: Trace, *, title: str, found: dict | None = None, layer: int = 0, cell: int = 0, quantity: str = "cell"
) -> str:
    """The HTML of the page. ``found`` (``probe.find``'s result) adds the signal and the ranked cell list;
    ``layer``, ``cell`` and ``quantity`` are what it shows first."""
    L, T, H = trace.shape
    T = min(T, MAX_TOKENS)
    layers = []
    for k in range(L):
        d = {}
        for q in QUANTITIES:
            b64, scale = _encode(trace.values[q][k, :T], signed=q not in GATES)
            d[q] = {"b64": b64, "scale": scale}
        layers.append(d)
    surprisal = None
    if trace.surprisal is not None:
        surprisal = [None if math.isnan(v) else round(float(v), 3) for v in trace.surprisal[:T]]
    data = {
        "title": title,
        "tokens": trace.tokens[:T],
        "layers": layers,
        "cells": H,
        "surprisal": surprisal,
        "signal": None if found is None else {"name": found["signal"], "values": found["values"][:T].tolist()},
        "start": {"layer": layer, "cell": cell, "quantity": quantity},
        "truncated": trace.shape[1] - T,
    }
    blob = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")  # nothing in it can close the tag
    return TEMPLATE.replace("%TITLE%", html.escape(title)).replace("%DATA%", blob)


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%TITLE%</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1em 2em; color: #222; }
#controls { display: flex; gap: 1.2em; align-items: center; flex-wrap: wrap; margin-bottom: .6em; }
#main { display: flex; gap: 1.5em; align-items: flex-start; }
#text { flex: 1; font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.5;
        border: 1px solid #ccc; padding: .6em; max-height: 70vh; overflow-y: auto; }
#text span { cursor: default; }
#text span.sel { outline: 1px solid #000; }
aside { width: 17em; max-height: 70vh; overflow-y: auto; font-size: 90%; }
aside ol { padding-left: 2.2em; margin: .3em 0; }
aside li { cursor: pointer; font-family: ui-monospace, monospace; }
aside li.cur { font-weight: bold; }
#tip { position: fixed; display: none; background: #fff; border: 1px solid #888; padding: .4em .6em;
       font-family: ui-monospace, monospace; font-size: 85%; pointer-events: none; box-shadow: 2px 2px 4px #aaa; }
#tip table { border-collapse: collapse; }
#tip td { padding: 0 .4em; text-align: right; }
svg { width: 100%; height: 140px; border: 1px solid #ccc; margin-top: .8em; }
.legend { font-size: 85%; color: #555; }
</style>
</head>
<body>
<h2 id="title"></h2>
<div id="controls">
  <label>layer <select id="layer"></select></label>
  <label>show <select id="qty"></select></label>
  <label>cell <input id="cell" type="number" min="0" step="1" style="width: 6em"></label>
  <span class="legend" id="legend"></span>
</div>
<div id="main">
  <div id="text"></div>
  <aside><b id="listtitle"></b><ol id="celllist"></ol></aside>
</div>
<svg id="plot" viewBox="0 0 1000 140" preserveAspectRatio="none"></svg>
<div class="legend">the selected cell over the text (black) and the signal (orange), each scaled to the plot</div>
<div id="tip"></div>
<script id="data" type="application/json">%DATA%</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const T = D.tokens.length, H = D.cells, L = D.layers.length;
const QTY = ["cell", "hidden", "input", "forget", "output"];
const GATES = new Set(["input", "forget", "output"]);
const cache = {};
function values(layer, q) {  // Float32Array (T * H) of real values
  const key = layer + ":" + q;
  if (cache[key]) return cache[key];
  const raw = atob(D.layers[layer][q].b64), scale = D.layers[layer][q].scale;
  const out = new Float32Array(raw.length), signed = !GATES.has(q);
  for (let i = 0; i < raw.length; i++) {
    const b = raw.charCodeAt(i);
    out[i] = signed ? (b - 128) / 127 * scale[i % H] : b / 255;
  }
  return (cache[key] = out);
}
const st = {layer: D.start.layer, cell: D.start.cell, qty: D.start.quantity};
const $ = (id) => document.getElementById(id);
$("title").textContent = D.title + " (" + T + " tokens, " + L + " layer(s) x " + H + " cells"
  + (D.truncated > 0 ? "; the first " + T + " tokens shown" : "") + ")";
for (let k = 0; k < L; k++) $("layer").add(new Option(String(k), String(k)));
const NAMES = {cell: "cell state", hidden: "hidden state"};
for (const q of QTY) $("qty").add(new Option(NAMES[q] || q + " gate", q));
if (D.surprisal) $("qty").add(new Option("surprisal (bits)", "surprisal"));
$("cell").max = String(H - 1);
const spans = [];
const frag = document.createDocumentFragment();
D.tokens.forEach((tok, t) => {
  const s = document.createElement("span");
  s.textContent = tok;
  s.dataset.t = String(t);
  spans.push(s);
  frag.appendChild(s);
});
$("text").appendChild(frag);
function colour(v, q) {  // white to red (positive) or blue (negative); gates and surprisal: white to red
  let a, neg = false;
  if (q === "surprisal") a = Math.min(v / 8, 1);
  else if (GATES.has(q)) a = v;
  else { neg = v < 0; a = Math.min(Math.abs(v), 1); }
  const c = Math.round(255 * (1 - a));
  return neg ? "rgb(" + c + "," + c + ",255)" : "rgb(255," + c + "," + c + ")";
}
function series() {  // the selected cell's values per token (scaled to about +-1 for states)
  const out = new Float32Array(T);
  if (st.qty === "surprisal") {
    for (let t = 0; t < T; t++) out[t] = D.surprisal[t] === null ? 0 : D.surprisal[t];
    return out;
  }
  const v = values(st.layer, st.qty), scale = GATES.has(st.qty) ? 1 : D.layers[st.layer][st.qty].scale[st.cell];
  for (let t = 0; t < T; t++) out[t] = v[t * H + st.cell] / scale;
  return out;
}
function paint() {
  const s = series();
  for (let t = 0; t < T; t++) spans[t].style.background = colour(s[t], st.qty);
  $("legend").textContent = st.qty === "surprisal" ? "white 0 bits, red 8+ bits"
    : GATES.has(st.qty) ? "white 0, red 1 (gate open)"
    : "blue negative, red positive (scaled to the cell's largest |value|)";
  plot(s);
  list();
}
function plot(s) {
  const svg = $("plot"), W = 1000, Hh = 140;
  let lo = Infinity, hi = -Infinity;
  for (const v of s) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!(hi > lo)) { hi = lo + 1; }
  const pts = (arr, a, b) => Array.from(arr, (v, t) => (T > 1 ? t / (T - 1) * W : 0).toFixed(1) + ","
    + (Hh - 5 - (v - a) / (b - a) * (Hh - 10)).toFixed(1)).join(" ");
  let body = '<polyline fill="none" stroke="#000" stroke-width="1" points="' + pts(s, lo, hi) + '"/>';
  if (D.signal) {
    const g = D.signal.values, slo = Math.min(...g), shi = Math.max(...g);
    body = '<polyline fill="none" stroke="#e80" stroke-width="1" points="' + pts(g, slo, shi > slo ? shi : slo + 1)
      + '"/>' + body;
  }
  svg.innerHTML = body;
}
function scores() {  // per cell of the current layer and quantity: |r| with the signal, or the spread
  const q = st.qty === "surprisal" ? "cell" : st.qty, v = values(st.layer, q);
  const out = [];
  const sig = D.signal ? D.signal.values : null;
  let sm = 0, ss = 0;
  if (sig) { for (const x of sig) sm += x; sm /= T; for (const x of sig) ss += (x - sm) * (x - sm); }
  for (let h = 0; h < H; h++) {
    let m = 0;
    for (let t = 0; t < T; t++) m += v[t * H + h];
    m /= T;
    let num = 0, den = 0;
    for (let t = 0; t < T; t++) {
      const a = v[t * H + h] - m;
      den += a * a;
      if (sig) num += a * (sig[t] - sm);
    }
    const r = sig ? (den > 0 && ss > 0 ? num / Math.sqrt(den * ss) : 0) : Math.sqrt(den / T);
    out.push([h, r]);
  }
  out.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  return out;
}
function list() {
  const q = st.qty === "surprisal" ? "cell" : st.qty;
  $("listtitle").textContent = D.signal ? "cells of layer " + st.layer + " (" + q + ") by |r| with " + D.signal.name
    : "cells of layer " + st.layer + " (" + q + ") by spread";
  const ol = $("celllist");
  ol.textContent = "";
  for (const [h, r] of scores().slice(0, 50)) {
    const li = document.createElement("li");
    li.textContent = "cell " + h + "  " + (D.signal ? "r=" + (r >= 0 ? "+" : "") + r.toFixed(3) : "sd=" + r.toFixed(3));
    if (h === st.cell) li.className = "cur";
    li.addEventListener("click", () => { st.cell = h; $("cell").value = String(h); paint(); });
    ol.appendChild(li);
  }
}
function tip(ev) {
  const el = ev.target;
  if (!el.dataset || el.dataset.t === undefined) return;
  const t = Number(el.dataset.t);
  let rows = "<tr><td></td><td>i</td><td>f</td><td>o</td><td>c</td><td>h</td></tr>";
  for (let k = 0; k < L; k++) {
    rows += "<tr><td>layer " + k + "</td>" + QTY.slice(2).concat(["cell", "hidden"]).map(
      (q) => "<td>" + values(k, q)[t * H + st.cell].toFixed(2) + "</td>").join("") + "</tr>";
  }
  const sur = D.surprisal && D.surprisal[t] !== null ? D.surprisal[t].toFixed(2) + " bits" : "-";
  const box = $("tip");
  box.innerHTML = "<div>token " + t + " " + JSON.stringify(D.tokens[t]).replace(/</g, "&lt;") + ", surprisal "
    + sur + "</div><div>cell " + st.cell + "</div><table>" + rows + "</table>";
  box.style.display = "block";
  box.style.left = Math.min(ev.clientX + 12, window.innerWidth - box.offsetWidth - 8) + "px";
  box.style.top = (ev.clientY + 14) + "px";
}
$("text").addEventListener("mouseover", tip);
$("text").addEventListener("mouseleave", () => { $("tip").style.display = "none"; });
$("layer").value = String(st.layer);
$("qty").value = st.qty;
$("cell").value = String(st.cell);
$("layer").addEventListener("change", (e) => { st.layer = Number(e.target.value); paint(); });
$("qty").addEventListener("change", (e) => { st.qty = e.target.value; paint(); });
$("cell").addEventListener("change", (e) => {
  const c = Math.trunc(Number(e.target.value));
  if (c >= 0 && c < H) { st.cell = c; paint(); } else { e.target.value = String(st.cell); }
});
paint();
document.body.dataset.rendered = String(T);
</script>
</body>
</html>
"""

"""Types of the optional C extension ``_cell.c``: the fused LSTM cell of classification (see its comments)."""

from typing_extensions import Buffer

def step(g: Buffer, rows: Buffer, scales: Buffer | None, index: Buffer, c: Buffer, h: Buffer, /) -> None:
    """g[n] += rows[index[n]] (times scales[index[n]] for int8 rows); then the cell updates c[n] and writes h[n]."""

def pool(h: Buffer, H: int, t: int, lengths: Buffer, last: Buffer, mx: Buffer, total: Buffer, /) -> None:
    """One step of the top layer's pooling: for lines longer than t, mx = max(mx, h), total += h, last = h at
    their final step."""

def bag(weight: Buffer, ids: Buffer, offsets: Buffer, out: Buffer, /) -> None:
    """out[n] = the sum of weight[ids[k]] for k from offsets[n] to offsets[n + 1] (the last bag: to the end)."""

"""Named datasets: a small registry and its resolution to a local file.

Order: the folder named by ``LSTM_TEXT_DATA``, then the cache (``data/`` in a source checkout, else the
user cache directory), then a download from the public source, verified by sha256. Tests never download.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import LstmTextError


@dataclass(frozen=True)
class Dataset:
    name: str
    file: str  # path under a data folder: <folder>/<file>
    url: str
    sha256: str
    license: str
    split: str


REGISTRY = {
    d.name: d
    for d in [
        Dataset(
            "tinyshakespeare",
            "tinyshakespeare/input.txt",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            "Shakespeare's works are in the public domain; file from karpathy/char-rnn (MIT).",
            "first 90% of the characters train, last 10% validate (nanoGPT's shakespeare_char split)",
        ),
    ]
}


def cache_dir() -> Path:
    source_data = Path(__file__).resolve().parents[2] / "data"
    if (source_data / "README.md").is_file():  # a source checkout caches in its own data/ folder
        return source_data
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstm-text"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve(name: str, *, download: bool = True) -> Path:
    """Local path of the named dataset, downloading and verifying it if no copy is found."""
    d = REGISTRY[name]
    env = os.environ.get("LSTM_TEXT_DATA")
    if env and (Path(env) / d.file).is_file():
        return Path(env) / d.file
    cached = cache_dir() / d.file
    if cached.is_file():
        return cached
    if not download:
        raise LstmTextError(
            f"dataset {name!r} is not available locally; place it at $LSTM_TEXT_DATA/{d.file} with LSTM_TEXT_DATA "
            "naming its folder, or allow downloads"
        )
    return _download(d, cached)


def _download(d: Dataset, dest: Path) -> Path:
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(d.url, timeout=60) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        if sha256_of(tmp) != d.sha256:
            raise LstmTextError(f"download of {d.name!r} from {d.url} failed its sha256 check")
        os.replace(tmp, dest)
    except OSError as e:
        raise LstmTextError(
            f"could not download dataset {d.name!r} from {d.url} ({e}); offline, place the file at {dest} or at "
            f"$LSTM_TEXT_DATA/{d.file} with LSTM_TEXT_DATA naming its folder"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest

"""Tiny corpora and tiny models, made by the tests themselves (no downloads, no shared data)."""

from __future__ import annotations

import csv
import random

import pytest
import torch

torch.set_num_threads(1)  # tiny models: threads cost more than they give, and results stay reproducible

WORDS = (
    "the king and queen of the land went to war against the sea , and the people sang songs "
    "of love and sorrow ; old men told tales by the fire while the children slept . café naïve "
    "über 東京 ünïcödé"
).split()


def children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (Linux's /proc; [] elsewhere)."""
    from pathlib import Path

    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_for_children(pid: int, n: int, timeout: float = 60.0) -> list[int]:
    """Wait until ``pid`` has ``n`` children (a command's workers have started: it is past its imports)."""
    import time

    deadline = time.monotonic() + timeout
    while len(children(pid)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return children(pid)


def make_corpus(n_chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines, size = [], 0
    while size < n_chars:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def corpus_text() -> str:
    return make_corpus(30_000)


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory, corpus_text):
    p = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    p.write_text(corpus_text, encoding="utf-8")
    return p


TINY_MODEL = {"layers": 2, "hidden": 32, "embed": 16}


def tiny_train_config(**kw):
    from lstm_text.config import TrainConfig

    base = dict(batch_size=8, seq_len=32, max_steps=40, lr=1e-2, warmup=5, seed=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, corpus_file):
    """A tiny trained char LM run directory, shared by the tests that only read it."""
    from lstm_text.training.lm import train_lm

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train_lm([str(corpus_file)], out, model=TINY_MODEL, train=tiny_train_config())
    return out


POS = "good great wonderful fun gorgeous witty moving brilliant".split()
NEG = "bad awful boring dull tedious ugly stupid mess".split()
FILL = "the film is a movie and this story was".split()


def labelled(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        lab = rng.choice(["positive", "negative"])
        words = [rng.choice(FILL) for _ in range(rng.randint(2, 6))] + [rng.choice(POS if lab == "positive" else NEG)]
        rng.shuffle(words)
        rows.append((lab, " ".join(words)))
    return rows


@pytest.fixture(scope="session", autouse=True)
def _token_cache(tmp_path_factory):
    """Token files of the tests' corpora go to a folder of the session's, never to the user's cache."""
    import os

    os.environ["LSTM_TEXT_CACHE"] = str(tmp_path_factory.mktemp("token-cache"))


@pytest.fixture
def pro_con(tmp_path):
    p = tmp_path / "pc.tsv"
    rows = [("pro" if lab == "positive" else "con", text) for lab, text in labelled(60, 1)]
    p.write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    return p


MID = "okay average fine decent ordinary mixed".split()
STAR_WORDS = {"1": NEG, "2": NEG, "3": MID, "4": POS, "5": POS}
STAR_MAP = "1=negative,2=negative,3=neutral,4=positive,5=positive"


def star_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """(review, stars) rows: filler words and one word of the stars' class, the classes 2:1:2."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        stars = rng.choice("12345")
        words = [rng.choice(FILL) for _ in range(rng.randint(3, 8))] + [rng.choice(STAR_WORDS[stars])]
        rng.shuffle(words)
        rows.append((" ".join(words), stars))
    return rows


def write_csv(path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])
        w.writerows(rows)


@pytest.fixture
def stars(tmp_path):
    """A newcomer's files: 170 reviews with 1-5 stars in a CSV, and 60 for dev."""
    train, dev = tmp_path / "reviews.csv", tmp_path / "reviews_dev.csv"
    write_csv(train, star_rows(170, 1))
    write_csv(dev, star_rows(60, 2))
    return train, dev


STAR_ARGS = ["--text-column", "review", "--label-column", "stars", "--label-map", STAR_MAP]

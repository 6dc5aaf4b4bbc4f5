"""Dev splits: the hash cut is deterministic, close to its fraction, disjoint; the shared sets keep dev out of train."""

from __future__ import annotations

import random
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from lstm_text.data.labelled import read_labelled
from lstm_text.errors import LstmTextError

import splits

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def synthetic(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = "good bad film plot actor dull great slow fine café 東京".split()
    return [(" ".join(rng.choices(words, k=rng.randint(3, 12))) + f" {i}", rng.choice("ab")) for i in range(n)]


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A tiny shared-data folder holding every file the registry names, and LSTM_TEXT_DATA pointing at it."""
    pairs = synthetic(400)
    for file in {s.train_file for s in splits.SENTIMENT_TRAIN.values()} | {
        s.dev_file for s in splits.SENTIMENT_TRAIN.values() if s.dev_file
    }:
        p = tmp_path / file
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ".txt":
            p.write_text("".join(f"{t}\n" for t, _ in pairs), encoding="utf-8")
        else:
            labels = ["very negative", "very positive", "neutral"] if "sst5" in file else ["negative", "positive"]
            rows = [f"{labels[i % len(labels)]}\t{t}\n" for i, (t, _) in enumerate(pairs)]
            p.write_text("label\ttext\n" + "".join(rows[:100] if "dev" in file else rows), encoding="utf-8")
    monkeypatch.setenv(splits.DATA_ENV, str(tmp_path))
    return tmp_path


def test_is_dev_is_crc32_of_utf8_bytes():
    for text, _ in synthetic(200):
        assert splits.is_dev(text, 0.3) == (zlib.crc32(text.encode("utf-8")) % 10_000 < 3000)
    assert not any(splits.is_dev(t, 0.0) for t, _ in synthetic(50))
    assert all(splits.is_dev(t, 1.0) for t, _ in synthetic(50))


def test_is_dev_same_in_a_fresh_process():
    """str hashes are salted per process; the split must not be."""
    texts = [t for t, _ in synthetic(100)]
    code = (
        f"import sys; sys.path.insert(0, {str(Path(splits.__file__).parent)!r}); from splits import is_dev; "
        "print(''.join('01'[is_dev(t, 0.2)] for t in sys.argv[1:]))"
    )
    fresh = subprocess.run([sys.executable, "-c", code, *texts], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "".join("01"[splits.is_dev(t, 0.2)] for t in texts)


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.2, 0.5])
def test_fraction_close_to_target(fraction):
    pairs = synthetic(20_000)
    train, dev = splits.split_pairs(pairs, fraction)
    assert len(train) + len(dev) == len(pairs)
    assert abs(len(dev) / len(pairs) - fraction) < 0.015  # binomial sd at n=20,000 is at most 0.0035


def test_split_is_order_free_disjoint_and_keeps_duplicates_together():
    pairs = synthetic(2000)
    pairs += [(t, "b") for t, _ in pairs[:300]]  # the same texts again, another label
    train, dev = splits.split_pairs(pairs, 0.2)
    assert {t for t, _ in train}.isdisjoint({t for t, _ in dev})
    assert sorted(splits.split_pairs(pairs, 0.2)[1]) == sorted(dev)
    shuffled = pairs[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(splits.split_pairs(shuffled, 0.2)[1]) == sorted(dev)
    assert [p for p in pairs if p in dev] == dev  # input order kept


def test_bad_fraction():
    with pytest.raises(LstmTextError, match="between 0 and 1"):
        splits.is_dev("x", 1.5)


def test_registry_sets(data):
    for name, s in splits.SENTIMENT_DEV.items():
        dev, train = splits.dev_set(name), splits.train_set(name)
        assert dev and train
        assert {t for t, _ in dev}.isdisjoint({t for t, _ in train})
        if not s.dev_file:
            assert all(splits.is_dev(t, s.fraction) for t, _ in dev)
    assert {lab for _, lab in splits.dev_set("sst5-3")} == {"negative", "positive", "neutral"}
    assert {lab for _, lab in splits.train_set("objective")} == {"neutral"}
    assert len(splits.train_set("sst2-phrases")) == 400 - 100  # rows whose text is an SST-2 dev text are dropped
    assert splits.sentiment_train("imdb") == splits.train_set("imdb")


def test_callers_get_their_own_lists(data):
    splits.dev_set("imdb").clear()
    assert splits.dev_set("imdb")


@pytest.mark.parametrize("part", ["dev", "train"])
def test_write_split_round_trip(data, tmp_path, part):
    p = tmp_path / "out" / f"{part}.tsv"
    n = splits.write_split("sst5-3", part, p)
    want = splits.dev_set("sst5-3") if part == "dev" else splits.train_set("sst5-3")
    assert n == len(want)
    assert read_labelled([p]) == want


def test_write_split_keeps_one_example_per_row(data, tmp_path):
    (data / "pros_cons/train.tsv").write_text(
        'label\ttext\npositive\tsays "hi"\tthen\tleaves\nnegative\tx\n', encoding="utf-8"
    )
    rows = []
    for part in ("dev", "train"):  # which side each lands on is the hash's business; together they hold both
        if splits.write_split("pros_cons", part, tmp_path / f"{part}.tsv"):
            rows += read_labelled([tmp_path / f"{part}.tsv"])
    assert sorted(rows) == [('says "hi" then leaves', "positive"), ("x", "negative")]
    assert splits._one_line("a\tb\r\nc\nd\re") == "a b c d e"


def test_errors_name_the_variable_and_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(splits.DATA_ENV, raising=False)
    with pytest.raises(LstmTextError, match="LSTM_TEXT_DATA is not set"):
        splits.dev_set("sst2")
    monkeypatch.setenv(splits.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(LstmTextError, match="LSTM_TEXT_DATA=.*nowhere is not a folder"):
        splits.dev_set("sst2")
    monkeypatch.setenv(splits.DATA_ENV, str(tmp_path))
    with pytest.raises(LstmTextError, match=r"LSTM_TEXT_DATA=.* has no imdb/train\.tsv"):
        splits.train_set("imdb")
    with pytest.raises(LstmTextError, match="no sentiment dev set named 'sst9'; known: sst2, sst5-3"):
        splits.dev_set("sst9")
    with pytest.raises(LstmTextError, match="part must be 'dev' or 'train'"):
        splits.write_split("sst2", "test", tmp_path / "x.tsv")


# The shared data's sets: sizes as documented in the module and the README, and no dev text in any train part.
REAL = {  # name: (dev rows, train rows)
    "sst2": (872, 6920),
    "sst5-3": (1101, 8543),  # SST-5 train repeats one dev sentence ("hey arnold !"); it is dropped
    "imdb": (2524, 22476),
    "pros_cons": (4526, 41341),
    "objective": (801, 3199),
    "tweets": (1915, 45596),
    "reddit": (4511, 35693),
}


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the shared data folder")
@pytest.mark.parametrize("name", [*REAL, "sst2-phrases"])
def test_real_sets(name, monkeypatch):
    monkeypatch.setenv(splits.DATA_ENV, str(SHARED))
    train = splits.train_set(name)
    dev = splits.dev_set("sst2" if name == "sst2-phrases" else name)
    assert not {t for t, _ in dev} & {t for t, _ in train}
    if name == "sst2-phrases":
        assert len(train) == 67_349
    else:
        assert (len(dev), len(train)) == REAL[name]

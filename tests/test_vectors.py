"""Reading pretrained word vectors: tiny files written by the tests, plus a peek at the shared GloVe file."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from lstm_text.data.vectors import WordVectors, embedding_init, read_vectors
from lstm_text.errors import LstmTextError

from neighbours import nearest

GLOVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glove" / "glove.6B.100d.100k.txt"

ROWS = [
    ("the", [0.5, -1.0, 2.25]),
    ("King", [1.0, 0.0, -0.125]),
    ("king", [3.0, 4.0, 5.0]),
    ("café", [-0.5, 0.75, 1e-05]),
    (",", [0.0, 1.5, -2.0]),
]
WORDS = [w for w, _ in ROWS]
MATRIX = np.array([v for _, v in ROWS], dtype=np.float32)


def glove_text(rows=ROWS) -> str:
    return "".join(f"{w} {' '.join(repr(x) for x in v)}\n" for w, v in rows)


def word2vec_text(rows=ROWS) -> str:
    # fastText .vec style: a "COUNT DIM" header, and a space at the end of each row
    return f"{len(rows)} {len(rows[0][1])}\n" + "".join(f"{w} {' '.join(repr(x) for x in v)} \n" for w, v in rows)


def write(tmp_path: Path, name: str, text: str | bytes, gz: bool = False) -> Path:
    data = text.encode("utf-8") if isinstance(text, str) else text
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("make", [glove_text, word2vec_text])
def test_reads_glove_and_word2vec_text_plain_or_gzipped(tmp_path, make, gz):
    v = read_vectors(write(tmp_path, "vectors.txt", make(), gz=gz))  # gzip found by magic bytes, not suffix
    assert v.words == WORDS
    assert v.matrix.dtype == np.float32 and v.matrix.shape == (5, 3) and v.dim == 3 and len(v) == 5
    np.testing.assert_array_equal(v.matrix, MATRIX)
    assert v.index == {w: i for i, w in enumerate(WORDS)}
    np.testing.assert_array_equal(v.get("café"), MATRIX[3])
    assert v.get("queen") is None


def test_crlf_bom_blank_lines_and_gz_suffix(tmp_path):
    text = "\ufeff" + glove_text().replace("\n", "\r\n") + "\r\n"
    v = read_vectors(write(tmp_path, "v.txt.gz", text, gz=True))
    assert v.words == WORDS
    np.testing.assert_array_equal(v.matrix, MATRIX)
    # a .gz name on a plain file is read as plain text
    assert read_vectors(write(tmp_path, "plain.gz", glove_text())).words == WORDS


def test_more_rows_than_a_batch(tmp_path):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5000, 4)).astype(np.float32)
    text = "".join(f"w{i} {' '.join(repr(float(x)) for x in row)}\n" for i, row in enumerate(m))
    v = read_vectors(write(tmp_path, "big.txt", text))
    assert len(v) == 5000 and v.words[4999] == "w4999"
    np.testing.assert_array_equal(v.matrix, m)


def test_words_filter_keeps_file_order(tmp_path):
    v = read_vectors(write(tmp_path, "v.txt", word2vec_text()), words={",", "the", "queen"})
    assert v.words == ["the", ","]
    np.testing.assert_array_equal(v.matrix, MATRIX[[0, 4]])


def test_limit_counts_file_rows(tmp_path):
    p = write(tmp_path, "v.txt", glove_text())
    v = read_vectors(p, limit=2)
    assert v.words == ["the", "King"]
    np.testing.assert_array_equal(v.matrix, MATRIX[:2])
    assert read_vectors(p, limit=3, words={"king", ","}).words == ["king"]  # "," is row 5, past the limit
    assert len(read_vectors(p, limit=100)) == 5


def test_normalize_collision_keeps_the_first(tmp_path):
    v = read_vectors(write(tmp_path, "v.txt", glove_text()), normalize=str.lower)
    assert v.words == ["the", "king", "café", ","]
    np.testing.assert_array_equal(v.get("king"), MATRIX[1])  # "King" comes first in the file: it wins
    # `words` is compared after normalizing
    w = read_vectors(write(tmp_path, "v2.txt", glove_text()), normalize=str.lower, words={"king"})
    assert w.words == ["king"] and w.matrix.tolist() == [MATRIX[1].tolist()]


def test_word_with_spaces_and_bad_utf8_byte(tmp_path):
    data = glove_text().encode() + b". . . 1.0 2.0 3.0\n" + b"caf\xe9 4.0 5.0 6.0\n"
    v = read_vectors(write(tmp_path, "v.txt", data))
    assert v.words[-2:] == [". . .", "caf\ufffd"]  # bad byte replaced, the rest of the file still read
    np.testing.assert_array_equal(v.matrix[-2:], [[1, 2, 3], [4, 5, 6]])


def test_embedding_init(tmp_path):
    v = read_vectors(write(tmp_path, "v.txt", glove_text()))
    pieces = ["<pad>", "<unk>", "\u2581the", "king", "\u2581", "\u2581queen", ",", "café"]
    emb, found = embedding_init(v, pieces, 3, scale=0.05, seed=7)
    assert emb.dtype == np.float32 and emb.shape == (8, 3)
    assert found.tolist() == [False, False, True, True, False, False, True, True]
    np.testing.assert_array_equal(emb[[2, 3, 6, 7]], MATRIX[[0, 2, 4, 3]])
    assert np.all(np.abs(emb[~found]) <= 0.05)
    assert len(np.unique(emb[~found])) == emb[~found].size  # random, not a constant fill
    again, found_again = embedding_init(v, pieces, 3, scale=0.05, seed=7)
    np.testing.assert_array_equal(again, emb)
    np.testing.assert_array_equal(found_again, found)
    other, _ = embedding_init(v, pieces, 3, scale=0.05, seed=8)
    assert not np.array_equal(other[~found], emb[~found])


def test_embedding_init_dimension_mismatch(tmp_path):
    v = WordVectors(["a"], np.zeros((1, 100), dtype=np.float32))
    with pytest.raises(LstmTextError, match=r"embed 96 does not match the vectors' dimension 100; use embed 100"):
        embedding_init(v, ["a"], 96)


def test_nearest():
    v = WordVectors(
        ["good", "great", "bad", "zero"],
        np.array([[1, 0.1], [0.9, 0.2], [-1, 0], [0, 0]], dtype=np.float32),
    )
    best = nearest(v, "good", k=2)
    assert [w for w, _ in best] == ["great", "zero"]
    assert best[0][1] == pytest.approx(float(np.dot([1, 0.1], [0.9, 0.2]) / np.hypot(1, 0.1) / np.hypot(0.9, 0.2)))
    assert len(nearest(v, "good", k=10)) == 3
    with pytest.raises(LstmTextError, match="'queen' is not in the vectors"):
        nearest(v, "queen")


# --- errors a user can fix: one line, naming the file, the line and the fix ---


def error_of(path, **kwargs) -> str:
    with pytest.raises(LstmTextError) as e:
        read_vectors(path, **kwargs)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_missing_file_and_directory(tmp_path):
    assert "not found" in error_of(tmp_path / "nope.txt") and "the vectors path" in error_of(tmp_path / "nope.txt")
    assert "is a directory" in error_of(tmp_path)


def test_empty_file(tmp_path):
    assert "is empty" in error_of(write(tmp_path, "empty.txt", ""))
    assert "no vectors" in error_of(write(tmp_path, "blank.txt", "\n\n"))
    assert "no vectors" in error_of(write(tmp_path, "empty.txt.gz", "", gz=True))


def test_header_but_no_rows(tmp_path):
    assert "a header but no vectors" in error_of(write(tmp_path, "v.vec", "100 3\n"))


def test_no_word_asked_for_is_present(tmp_path):
    msg = error_of(write(tmp_path, "v.txt", glove_text()), words={"queen", "rook"})
    assert "none of the 2 words" in msg and "5 rows" in msg


@pytest.mark.parametrize("gz", [False, True])
def test_short_row_names_the_line(tmp_path, gz):
    rows = [(f"w{i}", list(np.arange(100) / 8)) for i in range(3)]
    text = glove_text(rows) + "w3 " + " ".join(["0.5"] * 57) + "\n"
    msg = error_of(write(tmp_path, "v.txt", text, gz=gz))
    assert msg.endswith("v.txt, line 4: 57 values, expected 100 (is the file truncated or not a word-vector file?)")


def test_long_row_names_the_line(tmp_path):
    msg = error_of(write(tmp_path, "v.txt", glove_text() + "x 1 2 3 4\n"))
    assert "line 6: 4 values, expected 3" in msg


def test_row_check_also_applies_to_filtered_out_rows(tmp_path):
    msg = error_of(write(tmp_path, "v.txt", glove_text() + "x 1 2\n"), words={"the"})
    assert "line 6: 2 values, expected 3" in msg


def test_non_numeric_value(tmp_path):
    msg = error_of(write(tmp_path, "v.txt", glove_text() + "x 1 abc 3\n"))
    assert "line 6: 'abc' is not a number" in msg
    assert "line 1: 'world' is not a number" in error_of(write(tmp_path, "prose.txt", "hello world peace\n"))
    assert "line 2: a value is nan" in error_of(write(tmp_path, "nan.txt", "a 1 2\nb nan 1\n"))


def test_not_vectors_at_all(tmp_path):
    assert "line 1: a word with no numbers" in error_of(write(tmp_path, "words.txt", "hello\nworld\n"))


def test_header_that_lies_about_the_dimension(tmp_path):
    msg = error_of(write(tmp_path, "v.vec", "5 300\n" + glove_text()))
    assert "line 2: 3 values, but the header on line 1 says 300" in msg and "header wrong" in msg
    assert "line 1: the header says 0 dimensions" in error_of(write(tmp_path, "zero.vec", "5 0\n"))


def test_header_count_is_only_a_hint(tmp_path):
    # `head -n 3 wiki.vec` keeps a header that promises more rows than the file has, or fewer
    assert read_vectors(write(tmp_path, "a.vec", "2000000 3\n" + glove_text())).words == WORDS
    assert read_vectors(write(tmp_path, "b.vec", "2 3\n" + glove_text())).words == WORDS


def test_corrupt_and_truncated_gzip(tmp_path):
    rows = [(f"w{i}", [float(i), 0.5, -0.5]) for i in range(20000)]
    data = gzip.compress(glove_text(rows).encode())
    msg = error_of(write(tmp_path, "cut.txt.gz", data[: len(data) // 2]))
    assert "damaged or truncated gzip" in msg and "download it again" in msg
    broken = bytearray(data)
    broken[len(data) // 3 : len(data) // 3 + 64] = bytes(64)
    assert "damaged or truncated gzip" in error_of(write(tmp_path, "broken.txt.gz", bytes(broken)))
    assert "damaged or truncated gzip" in error_of(write(tmp_path, "tiny.gz", data[:12]))


@pytest.mark.parametrize("gz", [False, True])
def test_binary_word2vec_is_refused_early(tmp_path, gz):
    data = b"2 3\n" + b"".join(w.encode() + b" " + struct.pack("<3f", *v) for w, v in ROWS[:2])
    msg = error_of(write(tmp_path, "vectors.bin", data, gz=gz))
    assert "binary word2vec files are not supported; convert to text format" in msg


def test_zip_archive(tmp_path):
    assert "unzip it" in error_of(write(tmp_path, "glove.6B.zip", b"PK\x03\x04" + bytes(100)))


def test_negative_limit(tmp_path):
    assert "limit" in error_of(write(tmp_path, "v.txt", glove_text()), limit=-1)


@pytest.mark.skipif(not GLOVE.exists(), reason="shared GloVe sample not present")
def test_shared_glove_neighbours():
    v = read_vectors(GLOVE, limit=2000)
    assert len(v) == 2000 and v.dim == 100 and v.words[0] == "the"
    neighbours = [w for w, _ in nearest(v, "good", k=10)]
    assert {"better", "great"} & set(neighbours), neighbours

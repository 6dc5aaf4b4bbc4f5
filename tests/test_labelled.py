"""Reading labelled text: every format, every user error as one line, and round trips on arbitrary text."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_text.cli import main
from lstm_text.data.labelled import check_labels, read_labelled
from lstm_text.errors import LstmTextError

PAIRS = [("a fine film", "positive"), ('a "so-so" film, sadly', "negative"), ("  spaced  ", "neutral")]


def write(path, content: str | bytes):
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def error(paths, **kwargs) -> str:
    """The message read_labelled raises, checked to be a single line."""
    with pytest.raises(LstmTextError) as e:
        read_labelled(paths, **kwargs)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1, msg
    return msg


def tsv(pairs, header="label\ttext") -> str:
    order = [h.strip().lower() for h in header.split("\t")]
    rows = ["\t".join({"label": label, "text": text}.get(c, "x") for c in order) for text, label in pairs]
    return header + "\n" + "\n".join(rows) + "\n"


# --- formats -------------------------------------------------------------------------------------------


def test_tsv_keeps_quotes_and_spaces_and_strips_labels(tmp_path):
    p = write(tmp_path / "sst.tsv", 'label\ttext\n positive \t"quoted" start\nnegative\tend "quote\n')
    assert read_labelled([p]) == [('"quoted" start', "positive"), ('end "quote', "negative")]


def test_tsv_columns_in_any_order_with_other_columns_and_loose_header(tmp_path):
    p = write(tmp_path / "d.tsv", tsv(PAIRS, header="id\t Text \tsource\tLABEL "))
    assert read_labelled([p]) == PAIRS


def test_tab_in_the_header_means_tsv_whatever_the_name(tmp_path):
    assert read_labelled([write(tmp_path / "d.txt", tsv(PAIRS))]) == PAIRS
    assert read_labelled([write(tmp_path / "d.csv", tsv(PAIRS))]) == PAIRS


def test_tsv_text_in_the_last_column_keeps_its_tabs(tmp_path):
    p = write(tmp_path / "d.tsv", "label\ttext\npos\ta\tb\t\n")
    assert read_labelled([p]) == [("a\tb\t", "pos")]


def test_csv_with_quoting_and_multiline_text(tmp_path):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["Text", "label", "id"])
    w.writerows([text, label, i] for i, (text, label) in enumerate(PAIRS))
    w.writerow(["two\nlines", "pos", 9])
    p = write(tmp_path / "d.csv", buf.getvalue())
    assert read_labelled([p]) == PAIRS + [("two\nlines", "pos")]


def test_jsonl_with_string_and_int_labels(tmp_path):
    lines = [json.dumps({"text": t, "label": lab, "extra": 1}) for t, lab in PAIRS]
    lines.append(json.dumps({"label": 1, "text": "int label"}))
    p = write(tmp_path / "d.jsonl", "\n".join(lines))
    assert read_labelled([p]) == PAIRS + [("int label", "1")]
    q = write(tmp_path / "d.json", '{"text": "x", "label": " pos "}\n')
    assert read_labelled([q]) == [("x", "pos")]


def test_a_first_line_starting_with_a_brace_means_jsonl(tmp_path):
    p = write(tmp_path / "d.txt", '\n  {"text": "x", "label": "pos"}\n')
    assert read_labelled([p]) == [("x", "pos")]


@pytest.mark.parametrize("name", ["d.tsv", "d.csv", "d.jsonl"])
def test_bom_crlf_blank_lines_and_no_final_newline(tmp_path, name):
    if name.endswith(".jsonl"):
        body = '\r\n{"text": "a b", "label": "pos"}\r\n\r\n  \r\n{"text": "c", "label": "neg"}'
    else:
        sep = "\t" if name.endswith(".tsv") else ","
        body = f"\r\nlabel{sep}text\r\npos{sep}a b\r\n\r\n  \r\nneg{sep}c"
    p = write(tmp_path / name, b"\xef\xbb\xbf" + body.encode())
    assert read_labelled([p]) == [("a b", "pos"), ("c", "neg")]


@pytest.mark.parametrize("name", ["d.tsv", "d.csv", "d.jsonl"])
def test_very_long_lines(tmp_path, name):
    text = "word " * 100_000  # 500 KB, past csv's default 128 KiB field limit
    if name.endswith(".jsonl"):
        body = json.dumps({"text": text, "label": "pos"}) + "\n"
    else:
        sep = "\t" if name.endswith(".tsv") else ","
        body = f"label{sep}text\npos{sep}{text}\n"
    assert read_labelled([write(tmp_path / name, body)]) == [(text, "pos")]


def test_several_files_in_order_and_a_single_path(tmp_path):
    a = write(tmp_path / "a.tsv", tsv(PAIRS[:1]))
    b = write(tmp_path / "b.jsonl", json.dumps({"text": "t", "label": "l"}))
    assert read_labelled([a, str(b), a]) == PAIRS[:1] + [("t", "l")] + PAIRS[:1]
    assert read_labelled(a) == PAIRS[:1]


# --- errors --------------------------------------------------------------------------------------------


def test_file_errors(tmp_path):
    assert "file not found" in error([tmp_path / "nope.tsv"])
    assert "is a directory" in error([tmp_path])
    msg = error([write(tmp_path / "latin1.tsv", "label\ttext\npos\tcaf\xe9\n".encode("latin-1"))])
    assert "latin1.tsv is not valid UTF-8" in msg and "convert it to UTF-8" in msg
    assert "no labelled data given" in error([])


@pytest.mark.parametrize("name", ["e.tsv", "e.csv", "e.jsonl", "e.txt"])
def test_empty_files(tmp_path, name):
    msg = error([write(tmp_path / name, "\ufeff\n  \r\n\t\n")])
    assert f"{name} is empty" in msg


def test_header_only(tmp_path):
    assert "has a header but no examples" in error([write(tmp_path / "h.tsv", "label\ttext\n\n")])


def test_unknown_format(tmp_path):
    assert "cannot tell the format" in error([write(tmp_path / "d.txt", "label text\npos fine\n")])


def test_missing_columns(tmp_path):
    msg = error([write(tmp_path / "d.tsv", "a\tb\npos\tx\n")])
    assert msg == (
        f"{tmp_path / 'd.tsv'}: the header has no 'label' or 'text' column (found: a, b); "
        "name the columns with text_column and label_column, or make the first line name them, "
        "e.g. label<TAB>text"
    )
    msg = error([write(tmp_path / "nohead.tsv", "0\tit's a charming film\n")])
    assert "no 'label' or 'text' column (found: 0, it's a charming film)" in msg
    # GLUE names the text column "sentence": accepted as "text"
    assert read_labelled([write(tmp_path / "glue.tsv", "label\tsentence\n1\tfine\n")]) == [("fine", "1")]
    msg = error([write(tmp_path / "d.csv", "Label,review\npos,x\n")])
    assert "no 'text' column (found: label, review)" in msg and "e.g. label,text" in msg


def test_named_columns_and_keys(tmp_path):
    csv_file = write(tmp_path / "r.csv", 'id,Review,sentiment\n1,a fine film,pos\n2,"bad, bad",neg\n')
    got = read_labelled([csv_file], text_column="review", label_column="sentiment")
    assert got == [("a fine film", "pos"), ("bad, bad", "neg")]
    jsonl = write(tmp_path / "r.jsonl", '{"review": "fine", "stars": 5}\n')
    assert read_labelled([jsonl], text_column="review", label_column="stars") == [("fine", "5")]
    msg = error([jsonl], text_column="body", label_column="stars")
    assert "no 'body' key (found: review, stars)" in msg and "text_column and label_column" in msg
    msg = error([csv_file], text_column="body", label_column="sentiment")
    assert "no 'body' column (found: id, review, sentiment)" in msg
    assert "two different" in error([csv_file], text_column="x", label_column="X")


def test_encodings(tmp_path):
    rows = "label\ttext\npos\tcafé crème\n"
    latin = write(tmp_path / "latin1.tsv", rows.encode("latin-1"))
    assert read_labelled([latin], encoding="latin-1") == [("café crème", "pos")]
    for bom in ("utf-16", "utf-16-le", "utf-16-be"):  # Excel's "Unicode text": UTF-16 with a byte-order mark
        data = rows.encode(bom) if bom == "utf-16" else "\ufeff".encode(bom) + rows.encode(bom)
        assert read_labelled([write(tmp_path / f"{bom}.tsv", data)]) == [("café crème", "pos")], bom
    assert "unknown encoding 'nope'" in error([latin], encoding="nope")
    assert "is not valid UTF-8" in error([latin]) and "name it with encoding, e.g. latin-1" in error([latin])


def test_control_characters_in_a_header_stay_on_one_line(tmp_path):
    msg = error([write(tmp_path / "d.tsv", "a\x0cb\tc\u2028d\n")])
    assert "found: 'a\\x0cb', 'c\\u2028d'" in msg


def test_rows_without_a_label(tmp_path):
    p = tmp_path / "d.tsv"
    assert f"{p}, line 3: no label" in error([write(p, "label\ttext\npos\tfine\njust some text\n")])
    assert f"{p}, line 2: no label" in error([write(p, "label\ttext\n  \tfine\n")])
    q = tmp_path / "d.csv"
    assert f"{q}, line 4: no label" in error([write(q, 'text,label\n"a\nb",pos\nno label here\n')])


def test_bad_csv_quoting_names_the_line_where_the_row_starts(tmp_path):
    p = tmp_path / "d.csv"
    msg = error([write(p, 'label,text\npos,fine\nneg,"never closed\nmore\n')])
    assert f"{p}, line 3: cannot parse the row" in msg and "quote" in msg


@pytest.mark.parametrize(
    "line, fragment",
    [
        ('{"text": "x", "label": ', "invalid JSON"),
        ("[" * 100_000, "invalid JSON"),
        ('{"text": "x", "label": 1' + "1" * 5000 + "}", "invalid JSON"),
        ('["x", "pos"]', "expected a JSON object, got an array"),
        ('"x"', "expected a JSON object, got a string"),
        ('{"text": "x"}', "no 'label' key (found: text)"),
        ('{"label": "pos", "review": "x"}', "no 'text' key (found: label, review)"),
        ("{}", "no 'text' key (found: none)"),
        ('{"text": "x", "label": " "}', "no label"),
        ('{"text": "x", "label": null}', "the label must be a string or an integer, got null"),
        ('{"text": "x", "label": true}', "got true/false"),
        ('{"text": "x", "label": 0.5}', "got a number"),
        ('{"text": ["x"], "label": "pos"}', "the text must be a string, got an array"),
    ],
)
def test_bad_json_lines(tmp_path, line, fragment):
    p = tmp_path / "d.jsonl"
    msg = error([write(p, '{"text": "ok", "label": "pos"}\n\n' + line + "\n")])
    assert msg.startswith(f"{p}, line 3: ") and fragment in msg


def test_check_labels():
    assert check_labels([("a", "pos"), ("b", "neg"), ("c", "pos")]) == ["neg", "pos"]
    with pytest.raises(
        LstmTextError,
        match=r"^only one label \(positive\) in the training data; "
        r"a classifier needs at least two$",
    ):
        check_labels([("a", "positive"), ("b", "positive")])
    with pytest.raises(LstmTextError, match="no labelled examples"):
        check_labels([])
    with pytest.raises(LstmTextError, match=r"only 2 labels \(a, b\).*at least 3"):
        check_labels([("x", "a"), ("y", "b")], min_classes=3)


# --- properties ----------------------------------------------------------------------------------------

# TSV has no quoting, so text may hold anything but the tab and the line breaks csv splits on
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\t\n\r"), max_size=40)
LABEL = st.text(st.characters(codec="utf-8", exclude_characters="\t\n\r"), min_size=1, max_size=10).filter(
    lambda s: s.strip() == s and s
)
PAIRS_ST = st.lists(st.tuples(TEXT, LABEL), min_size=1, max_size=8)
FILES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FILES
@given(PAIRS_ST, st.booleans())
def test_tsv_csv_and_jsonl_round_trip(tmp_path, pairs, label_first):
    header = "label\ttext" if label_first else "text\tlabel"
    assert read_labelled([write(tmp_path / "d.tsv", tsv(pairs, header))]) == pairs

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header.split("\t"))
    w.writerows([label, text] if label_first else [text, label] for text, label in pairs)
    assert read_labelled([write(tmp_path / "d.csv", buf.getvalue())]) == pairs

    body = "\n".join(json.dumps({"text": t, "label": lab}, ensure_ascii=False) for t, lab in pairs)
    assert read_labelled([write(tmp_path / "d.jsonl", body)]) == pairs


# bytes that reach past the UTF-8 check: mostly text built from the characters the parser cares about
NASTY = st.text(st.sampled_from(list("label\ttext\r\n \"'{}:,\x00\x0c\u2028\ufeffé")), max_size=80)
BYTES = st.one_of(
    st.binary(max_size=80),
    NASTY.map(lambda s: s.encode("utf-8")),
    st.tuples(st.sampled_from(["label\ttext\n", "text\tLabel\r\n", "\ufeffx\tlabel\ttext\n"]), NASTY).map(
        lambda hs: (hs[0] + hs[1]).encode("utf-8")
    ),
    st.binary(max_size=80).map(lambda b: b"label\ttext\n" + b),
)


@FILES
@given(BYTES)
def test_arbitrary_bytes_parse_or_raise_one_line_error(tmp_path, data):
    try:
        pairs = read_labelled([write(tmp_path / "d.tsv", data)])
    except LstmTextError as e:
        assert len(str(e).splitlines()) == 1, str(e)
    else:
        assert all(isinstance(t, str) and isinstance(lab, str) and lab for t, lab in pairs)


def test_label_map_with_a_key_the_file_lacks_is_an_error_listing_its_labels(tmp_path, pro_con, capsys):
    out = tmp_path / "r"
    args = ["train-classifier", str(pro_con), "--out", str(out), "--max-steps", "1", "--quiet"]
    assert main([*args, "--label-map", "pros=positive,con=negative"]) == 1
    err = capsys.readouterr().err
    assert "--label-map names pros, which the data does not have; its labels are con, pro" in err
    assert not (out / "model.safetensors").exists()


def test_a_csv_with_its_own_column_names_and_encoding_trains_and_evaluates(tmp_path, capsys):
    import json

    from conftest import labelled

    rows = "".join(f'{i},"{t} café",{lab}\n' for i, (lab, t) in enumerate(labelled(120, 5)))
    p = tmp_path / "export.csv"
    p.write_bytes(("id,review,sentiment\n" + rows).encode("cp1252"))
    out = tmp_path / "r"
    args = ["train-classifier", str(p), "--out", str(out), "--epochs", "2", "--quiet", "--tokenizer", "word"]
    assert main([*args, "--hidden", "8", "--embed", "8"]) == 1
    assert "not valid UTF-8" in capsys.readouterr().err
    cols = ["--text-column", "review", "--label-column", "sentiment", "--encoding", "cp1252"]
    assert main([*args, "--hidden", "8", "--embed", "8", *cols]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), str(p), "--encoding", "cp1252", "--json"]) == 0  # columns: the model's
    assert json.loads(capsys.readouterr().out)["examples"] == 120


def test_a_label_map_that_leaves_a_label_out_gives_a_notice_or_with_strict_an_error(tmp_path, stars, capsys):
    train, _ = stars
    args = ["train-classifier", str(train), "--text-column", "review", "--label-column", "stars"]
    args += ["--label-map", "1=negative,2=negative,4=positive,5=positive", "--max-steps", "2", "--hidden", "8"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "notice: --label-map leaves 3 unmapped: each stays a class of its own (--strict makes this an error)" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--strict"]) == 1
    assert "error: --label-map leaves 3 unmapped; map every label" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_label_set_too_large_is_refused_before_training(tmp_path, capsys):
    """10,000 labels made a 10,000 x 10,000 confusion matrix per validation (3 GB for 20,000 rows), and the
    out-of-memory message blamed the batch size."""
    from lstm_text.cli import main

    f = tmp_path / "many.tsv"
    f.write_text("label\ttext\n" + "".join(f"id{i}\tsome text {i}\n" for i in range(1001)), encoding="utf-8")
    assert main(["train-classifier", str(f), "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "1,001 labels in the training data" in err and "at most 1,000" in err, err
    assert not (tmp_path / "run" / "model.safetensors").exists()

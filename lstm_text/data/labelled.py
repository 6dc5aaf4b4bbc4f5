"""Labelled text for the sentiment classifier: (text, label) pairs from TSV, CSV or JSON Lines files.

Stdlib only; every way a file can be unusable is one LstmTextError line naming the file, the line and the fix.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..config import MAX_LABELS
from ..errors import LstmTextError
from .text import read_text

_JSON_SUFFIXES = (".jsonl", ".json")
LABELLED_SUFFIXES = (".tsv", ".csv", *_JSON_SUFFIXES)  # names that say "labelled examples", not plain text


def is_labelled_name(path: str | Path) -> bool:
    """Whether a file's name marks it as labelled examples (for a model with both heads, plain text is
    measured in bpc and a labelled file by the classifier)."""
    return Path(path).suffix.lower() in LABELLED_SUFFIXES


_JSON_EXAMPLE = '{"text": "a fine film", "label": "positive"}'


def read_labelled(
    paths: Sequence[str | Path], *, text_column: str = "text", label_column: str = "label", encoding: str | None = None
) -> list[tuple[str, str]]:
    """(text, label) pairs from one or more files, in file and line order.

    The format comes from the name: ``.tsv`` (or any file whose header line holds a tab) and ``.csv`` need a
    header naming the label and text columns (any order, case-insensitive, other columns ignored);
    ``.jsonl``/``.json`` (or a first line starting with ``{``) hold one object with the text and label keys
    per line. Blank lines are skipped, text is kept as is, labels are stripped.

    Args:
        paths: the files to read; a single path is accepted too.
        text_column, label_column: the names of the text and label columns (or JSON keys), e.g. a CSV's
            ``review`` and ``sentiment``. With the default ``text``, a column named ``sentence`` (GLUE) is
            taken too.
        encoding: the files' encoding (``data.text.read_text``): UTF-8 or BOM-marked UTF-16 by default.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise LstmTextError("no labelled data given; pass one or more .tsv, .csv or .jsonl files")
    cols = (text_column.strip(), label_column.strip())
    if not all(cols) or cols[0].lower() == cols[1].lower():
        raise LstmTextError("{text_column} and {label_column} must be two different non-empty names", "label_column")
    pairs: list[tuple[str, str]] = []
    for path in paths:
        pairs += _read_file(Path(path), cols, encoding)
    return pairs


def check_labels(pairs: Iterable[tuple[str, str]], min_classes: int = 2) -> list[str]:
    """The sorted set of labels, or an error when there are no examples or fewer than ``min_classes``."""
    labels = sorted({label for _, label in pairs})
    if not labels:
        raise LstmTextError("no labelled examples in the training data; give files with at least one example")
    if len(labels) < min_classes:
        found = "only one label" if len(labels) == 1 else f"only {len(labels)} labels"
        need = "two" if min_classes == 2 else str(min_classes)
        raise LstmTextError(f"{found} ({_show_list(labels)}) in the training data; a classifier needs at least {need}")
    if len(labels) > MAX_LABELS:
        raise LstmTextError(
            f"{len(labels):,} labels in the training data ({_show_list(labels)}); a classifier takes at most "
            f"{MAX_LABELS:,}: is the label column right? ({{label_column}}; {{label_map}} merges labels)",
            "label_column",
        )
    return labels


def _read_file(p: Path, cols: tuple[str, str], encoding: str | None) -> list[tuple[str, str]]:
    text = read_text(p, encoding)  # missing file, directory, bad encoding and the BOM are handled there
    lines = io.StringIO(text, newline="").readlines()  # splits on \n, \r, \r\n only, unlike str.splitlines
    first = next((line for line in lines if line.strip()), None)
    suffix = p.suffix.lower()
    if first is None:
        if suffix in _JSON_SUFFIXES:
            raise LstmTextError(f"{p} is empty; write one JSON object per line, e.g. {_JSON_EXAMPLE}")
        sep = "," if suffix == ".csv" else "<TAB>"
        raise LstmTextError(f"{p} is empty; the first line must name the columns, e.g. label{sep}text")
    if suffix in _JSON_SUFFIXES or (suffix not in (".tsv", ".csv") and first.lstrip().startswith("{")):
        return _read_jsonl(p, lines, cols)
    if "\t" in first or suffix == ".tsv":
        # SST and friends put bare quotes in text: with quoting off, a tab is the only special character.
        return _read_table(p, csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), "\t", cols)
    if suffix == ".csv":
        # strict: a stray quote is an error with a line number, not a field that silently eats the file
        return _read_table(p, csv.reader(lines, strict=True), ",", cols)
    raise LstmTextError(
        f"{p}: cannot tell the format from the name or the first line; use .tsv (label<TAB>text), "
        f".csv (label,text) or .jsonl (one JSON object per line)"
    )


def _read_table(p: Path, reader, delimiter: str, cols: tuple[str, str]) -> list[tuple[str, str]]:
    csv.field_size_limit(2**31 - 1)  # one review can be a very long line; the default limit is 128 KiB
    sep, fields = ("<TAB>", "a tab") if delimiter == "\t" else (",", "commas")
    records = _records(p, reader, delimiter)
    first = next(records, None)
    if first is None:  # only whitespace, e.g. inside quotes
        raise LstmTextError(f"{p} is empty; the first line must name the columns, e.g. label{sep}text")
    tc, lc = cols[0].lower(), cols[1].lower()  # header names match case-insensitively
    names = [h.strip().lower() for h in first[1]]
    if tc == "text" and "text" not in names and "sentence" in names:  # GLUE's name for the text column
        names[names.index("sentence")] = "text"
    missing = [c for c in (lc, tc) if c not in names]
    if missing:
        raise LstmTextError(
            f"{p}: the header has no {' or '.join(repr(c) for c in missing)} column "
            f"(found: {_show_list(names)}); name the columns with {{text_column}} and {{label_column}}, "
            f"or make the first line name them, e.g. label{sep}text",
            "text_column" if tc in missing else "label_column",
        )
    li, ti = names.index(lc), names.index(tc)
    need = max(li, ti) + 1
    pairs = []
    for n, row in records:
        if len(row) < need:
            raise LstmTextError(
                f"{p}, line {n}: no label (the row has {len(row)} field(s), the header needs {need}); "
                f"separate the fields with {fields} as in the header"
            )
        label = row[li].strip()
        if not label:
            raise LstmTextError(f"{p}, line {n}: no label; every row needs a value in the {lc!r} column")
        # text is the last column and the row has more: the text itself held the delimiter, so put it back
        text = delimiter.join(row[ti:]) if ti == len(names) - 1 else row[ti]
        pairs.append((text, label))
    if not pairs:
        raise LstmTextError(f"{p} has a header but no examples; add one example per line after the header")
    return pairs


def _records(p: Path, reader, delimiter: str):
    """(first line number, fields) of each non-blank record; csv errors become one-line LstmTextErrors."""
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            fix = (
                "fields that start with a quote must end with one, and quotes inside them are doubled"
                if delimiter == ","
                else "check the line"
            )
            raise LstmTextError(f"{p}, line {start}: cannot parse the row ({e}); {fix}") from None
        if any(f.strip() for f in row):
            yield start, row
        start = reader.line_num + 1  # a quoted CSV field may span lines; report where the record begins


def _read_jsonl(p: Path, lines: list[str], cols: tuple[str, str]) -> list[tuple[str, str]]:
    one_per_line = f"write one JSON object per line, e.g. {_JSON_EXAMPLE}"
    pairs = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p}, line {n}"
        try:
            obj = json.loads(line)
        except RecursionError:
            raise LstmTextError(f"{where}: invalid JSON (nested too deeply); {one_per_line}") from None
        except ValueError as e:  # JSONDecodeError, or an integer too long to convert
            detail = f"{e.msg}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else _show(str(e), 80)
            raise LstmTextError(f"{where}: invalid JSON ({detail}); {one_per_line}") from None
        if not isinstance(obj, dict):
            raise LstmTextError(f"{where}: expected a JSON object, got {_json_kind(obj)}; {one_per_line}")
        tk, lk = cols
        for key in (tk, lk):
            if key not in obj:
                raise LstmTextError(
                    f"{where}: no {key!r} key (found: {_show_list(list(obj))}); every line needs "
                    f"{tk!r} and {lk!r} (or name the keys with {{text_column}} and {{label_column}}), "
                    f"e.g. {_JSON_EXAMPLE}",
                    "text_column" if key == tk else "label_column",
                )
        text, label = obj[tk], obj[lk]
        if not isinstance(text, str):
            raise LstmTextError(f"{where}: the text must be a string, got {_json_kind(text)}")
        if isinstance(label, int) and not isinstance(label, bool):
            label = str(label)
        if not isinstance(label, str):
            raise LstmTextError(f"{where}: the label must be a string or an integer, got {_json_kind(label)}")
        if not label.strip():
            raise LstmTextError(f"{where}: no label; every line needs a non-empty {lk!r}")
        pairs.append((text, label.strip()))
    return pairs


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    kinds = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _show(s: str, width: int = 40) -> str:
    """A name as it can sit inside a one-line message: escaped if it holds control characters, shortened."""
    s = s if s and s.isprintable() else repr(s)
    return s if len(s) <= width else s[: width - 3] + "..."


def _show_list(names: list[str], limit: int = 8) -> str:
    if not names:
        return "none"
    return ", ".join(_show(s) for s in names[:limit]) + (", ..." if len(names) > limit else "")


def parse_label_map(spec: str | None) -> dict[str, str]:
    """``"very negative=negative,very positive=positive"`` -> {old: new}; merges or renames labels."""
    if not spec:
        return {}
    mapping = {}
    for part in spec.split(","):
        old, sep, new = part.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise LstmTextError(
                f"{{label_map}}: {part.strip()!r} is not OLD=NEW (e.g. 'very negative=negative')", "label_map"
            )
        mapping[old.strip()] = new.strip()
    return mapping


def unmapped_labels(pairs: list[tuple[str, str]], mapping: dict[str, str]) -> list[str]:
    """The labels of ``pairs`` that ``mapping`` neither renames nor names as a target, sorted: they stay
    classes of their own (mapping 1, 2, 4, 5 of five star ratings leaves 3 a class)."""
    return sorted({lab for _, lab in pairs} - set(mapping) - set(mapping.values()))


def map_labels(
    pairs: list[tuple[str, str]], mapping: dict[str, str] | None, check: bool = False
) -> list[tuple[str, str]]:
    """Labels renamed by ``mapping`` ({old: new}). ``check``: a key no example has is an error that lists the
    labels the data does have (a misspelt ``--label-map`` must not be silently ignored)."""
    if not mapping:
        return pairs
    if check:
        have = {lab for _, lab in pairs}
        unknown = [k for k in mapping if k not in have]
        if unknown:
            raise LstmTextError(
                f"{{label_map}} names {_show_list(unknown)}, which the data does not have; its labels are "
                f"{_show_list(sorted(have))}",
                "label_map",
            )
    return [(t, mapping.get(lab, lab)) for t, lab in pairs]

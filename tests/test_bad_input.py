"""Bad input, everywhere: each case ends with one line on stderr naming the problem, the exact exit code
(1: a problem with the input, 2: a usage error), no traceback, and nothing written where it should not be."""

import json
import os

import pytest

from lstm_text.cli import main

from conftest import labelled


@pytest.fixture(scope="module")
def files(tmp_path_factory, corpus_file, tiny_run):
    d = tmp_path_factory.mktemp("bad")

    def w(name, data):
        p = d / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        return str(p)

    good_tsv = "label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(60, 0))
    f = {
        "dir": str(d),
        "empty_dir": str((d / "no-text").mkdir() or d / "no-text"),
        "missing": str(d / "missing.txt"),
        "empty": w("empty.txt", ""),
        "blank": w("blank.txt", " \n\n \t\n"),
        "short": w("short.txt", "hello world\n" * 3),
        "latin1": w("latin1.txt", "caf\xe9 au lait. ".encode("latin-1") * 200),
        "nul": w("nul.txt", b"abc\x00def\n" * 2000),
        "corpus": str(corpus_file),
        "run": str(tiny_run),
        "garbage": w("garbage.safetensors", b"\x00" * 64),
        "a_file": w("plain.txt", "x"),
        "one_class": w("one.tsv", "label\ttext\npositive\tgood\npositive\tfine\n"),
        "no_cols": w("nocols.tsv", "a\tb\nx\ty\n"),
        "no_label": w("nolabel.tsv", "label\ttext\npositive\tgood\n\tbad one\n"),
        "empty_tsv": w("empty.tsv", ""),
        "header_only": w("header.tsv", "label\ttext\n"),
        "bad_jsonl": w("bad.jsonl", '{"text": "good", "label": "pos"}\n{not json}\n'),
        "jsonl_no_key": w("nokey.jsonl", '{"text": "good"}\n'),
        "good_tsv": w("good.tsv", good_tsv),
        "unknown_dev": w("dev.tsv", "label\ttext\nneutral\tthe film\n"),
        "latin1_lines": w("lines.txt", "tr\xe8s bien\n".encode("latin-1")),
        "tiny": w("tiny.txt", "a"),
    }
    out = d / "out"
    rc = main(
        [
            "train-classifier",
            f["good_tsv"],
            "--out",
            str(d / "clf"),
            "--max-steps",
            "3",
            "--hidden",
            "8",
            "--embed",
            "8",
            "--vocab-size",
            "300",
        ]
    )
    assert rc == 0
    f["clf"] = str(d / "clf")
    f["out"] = str(out)
    return f


# (argv with {placeholders}, exit code, fragment of the one stderr line)
CASES = [
    # train: the corpus
    ("train {missing} --out {out}", 1, "file not found"),
    ("train {empty_dir} --out {out}", 1, "directory with no text files"),
    ("train {dir}/*.nothing --out {out}", 1, "no files match"),
    ("train {dir} --out {out}", 1, "garbage.safetensors contains NUL bytes"),  # a directory is a corpus
    ("train {empty} --out {out}", 1, "is empty"),
    ("train {blank} --out {out}", 1, "is empty"),
    ("train {short} --out {out}", 1, "shorter than one sequence"),
    ("train {latin1} --out {out}", 1, "not valid UTF-8"),
    ("train {nul} --out {out}", 1, "NUL bytes"),
    ("train no-such-dataset --out {out}", 1, "file not found"),
    ("train --out {out}", 2, "CORPUS"),
    # train: options
    ("train {corpus} --out {out} --hidden 0", 1, "--hidden"),
    ("train {corpus} --out {out} --layers 0", 1, "--layers"),
    ("train {corpus} --out {out} --layers 99", 1, "--layers"),
    ("train {corpus} --out {out} --dropout 1.5", 1, "--dropout"),
    ("train {corpus} --out {out} --embed-dropout -0.1", 1, "--embed-dropout"),
    ("train {corpus} --out {out} --batch-size 0", 1, "--batch-size"),
    ("train {corpus} --out {out} --seq-len 1", 1, "--seq-len"),
    ("train {corpus} --out {out} --lr 0", 1, "--lr"),
    ("train {corpus} --out {out} --val-fraction 0", 1, "--val-fraction"),
    ("train {corpus} --out {out} --val-fraction 1", 1, "--val-fraction"),
    ("train {corpus} --out {out} --grad-clip -1", 1, "--grad-clip"),
    ("train {corpus} --out {out} --max-steps -1", 1, "--max-steps"),
    ("train {corpus} --out {out} --time-budget -5", 1, "--time-budget"),
    ("train {corpus} --out {out} --tokenizer words", 2, "--tokenizer"),
    ("train {corpus} --out {out} --device tpu", 2, "--device"),
    ("train {corpus} --out {out} --tokenizer bpe --vocab-size 10", 1, "--vocab-size"),
    ("train {corpus} --out {out} --tokenizer bpe --vocab-size 100 --max-steps 1", 1, "too small"),
    ("train {corpus} --out {run}", 1, "already holds a run"),
    ("train {corpus} --out {a_file}", 1, "not a directory"),
    ("train --out {out} --resume", 1, "no resume.safetensors"),
    # generate
    ("generate {missing}", 1, "model not found"),
    ("generate {dir}", 1, "has no model.safetensors"),
    ("generate {garbage}", 1, "damaged"),
    ("generate {clf} x", 1, "cannot generate"),
    ("generate {run} x --temperature 0", 1, "--temperature"),
    ("generate {run} x --quantize int4", 2, "--quantize"),
    ("generate {run} x --quantize int8 --device cuda", 1, "--device"),
    ("generate {run} x --temperature -1", 1, "--temperature"),
    ("generate {run} x --top-p 0", 1, "--top-p"),
    ("generate {run} x --top-p 1.5", 1, "--top-p"),
    ("generate {run} x --top-k -1", 1, "--top-k"),
    ("generate {run} x --min-p 1", 1, "--min-p"),
    ("generate {run} x --repetition-penalty 0", 1, "--repetition-penalty"),
    ("generate {run} x --num-samples 0", 2, "--num-samples"),
    ("generate {run} x --max-tokens -1", 1, "--max-tokens"),
    ("generate {run} x --max-tokens ten", 2, "--max-tokens"),
    ("generate {run} x --prompt-file {corpus}", 2, "not both"),
    ("generate {run} --prompt-file {missing}", 1, "file not found"),
    ("generate {run} --prompt-file {latin1}", 1, "not valid UTF-8"),
    # evaluate and info
    ("evaluate {run} {missing}", 1, "file not found"),
    ("evaluate {run} {latin1}", 1, "not valid UTF-8"),
    ("evaluate {run} {tiny}", 1, "too short"),
    ("evaluate {clf} {unknown_dev}", 1, "none of the file's labels"),
    ("info {dir}", 1, "has no model.safetensors"),
    ("info {garbage}", 1, "damaged"),
    # classify
    ("classify --model {run} {corpus}", 2, "without a classification head"),
    ("classify --model {clf} {missing}", 1, "file not found"),
    ("classify --model {clf} --quantize fp8", 2, "--quantize"),
    ("classify --model {clf} {dir}", 1, "is a directory"),
    ("classify --model {clf} {latin1_lines}", 1, "not valid UTF-8"),
    ("classify --model {clf} --batch-size 0 {corpus}", 2, "--batch-size"),
    ("classify --model {clf} --threshold 1.5 {corpus}", 2, "--threshold"),
    ("classify --model {clf} --format xml {corpus}", 2, "--format"),
    # train-classifier
    ("train-classifier {one_class} --out {out}", 1, "only one label"),
    ("train-classifier {no_cols} --out {out}", 1, "no 'label'"),
    ("train-classifier {no_label} --out {out}", 1, "no label"),
    ("train-classifier {empty_tsv} --out {out}", 1, "empty"),
    ("train-classifier {header_only} --out {out}", 1, "no examples"),
    ("train-classifier {bad_jsonl} --out {out}", 1, "line 2"),
    ("train-classifier {jsonl_no_key} --out {out}", 1, "label"),
    ("train-classifier {good_tsv} --dev {unknown_dev} --out {out}", 1, "labels the training data lacks"),
    ("train-classifier {good_tsv} --out {out} --label-map oops", 1, "--label-map"),
    ("train-classifier {good_tsv} --out {out} --init {garbage}", 1, "damaged"),
    ("train-classifier {good_tsv} --out {out} --init {run} --bidirectional", 2, "--bidirectional"),
    ("train-classifier {missing} --out {out}", 1, "file not found"),
    ("nonsense", 2, "nonsense"),
]


@pytest.mark.parametrize("argv,code,fragment", CASES, ids=[c[0].split(" {")[0] + f"-{i}" for i, c in enumerate(CASES)])
def test_bad_input(files, capsys, argv, code, fragment):
    args = [a.format(**files) for a in argv.split()]
    rc = main(args)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert rc == code, (args, rc, captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in captured.err + captured.out
    from pathlib import Path

    out = Path(files["out"])
    assert not (out / "model.safetensors").exists()


def test_the_table_is_large_enough():
    """Every command that reads a corpus, a model or labelled lines keeps bad inputs of its own in the table,
    and no case is there twice (a copy would only make it look larger)."""
    from collections import Counter

    per_command = Counter(argv.split()[0] for argv, _, _ in CASES)
    commands = ("train", "generate", "evaluate", "info", "classify", "train-classifier")
    assert all(per_command[c] >= 2 for c in commands), per_command
    assert len({argv for argv, _, _ in CASES}) == len(CASES)


def test_a_prompt_of_unknown_characters_is_not_an_error(files, capsys):
    assert main(["generate", files["run"], "☃☃☃", "--max-tokens", "5", "--seed", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("☃☃☃") and "warning:" in captured.err


def test_a_huge_single_line_classifies_in_bounded_memory(files, tmp_path, capsys):
    import resource

    big = tmp_path / "big.txt"
    with open(big, "w") as f:
        f.write("good " * 4_000_000 + "\n")  # 20 MB on one line
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["classify", "--model", files["clf"], str(big), "--format", "jsonl"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and json.loads(out[0])["label"] in ("positive", "negative")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 400


@pytest.mark.parametrize("command", ["train", "train-classifier"])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_special_files_are_refused_by_type(tmp_path, capsys, command, special):
    """A FIFO as corpus blocked for ever in open(); /dev/zero read as "empty" (size 0) or without end."""
    from lstm_text.cli import main

    path = special
    if special == "fifo":
        path = str(tmp_path / "pipe")
        os.mkfifo(path)
    assert main([command, path, "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert f"{path} is a {'FIFO' if special == 'fifo' else 'device'}, not a text file" in err, err

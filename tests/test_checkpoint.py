"""Checkpoints are data: hostile or damaged model files are refused and never run, and a failed save is one line."""

import os
import pickle

import torch


def test_no_space_left_while_saving_is_one_line(tmp_path, monkeypatch, capsys, corpus_file):
    """The device fills while the model is saved: one line naming the file, exit 1, not an internal error."""
    import errno

    from lstm_text import checkpoint
    from lstm_text.cli import main

    monkeypatch.setenv("LSTM_TEXT_CACHE", str(tmp_path / "cache"))

    out = tmp_path / "run"
    fsync = os.fsync

    def full(fd):  # the run directory's device is full; the cache's is not
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(out)):
            raise OSError(errno.ENOSPC, "No space left on device")
        fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", full)
    assert (
        main(["train", str(corpus_file), "--out", str(out), "--max-steps", "2", "--hidden", "8", "--layers", "1"]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: No space left on device: ") and str(out) in err, err
    assert not list(out.glob(".*.tmp"))


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['PAYLOAD_MARK']}",))


def test_pickle_payloads_are_refused_and_never_run(tmp_path, tiny_run, monkeypatch, capsys):
    from lstm_text.cli import main

    mark = tmp_path / "pwned"
    monkeypatch.setenv("PAYLOAD_MARK", str(mark))
    blob = pickle.dumps({"weights": Payload()})
    hostile = [tmp_path / "model.pt", tmp_path / "model.safetensors", tmp_path / "model.bin"]
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(blob)
    for p in hostile:
        p.write_bytes(blob)
    # a torch.save zip (pickle inside) renamed to the expected file name
    zipped = tmp_path / "zipped" / "model.safetensors"
    zipped.parent.mkdir()
    torch.save({"x": Payload()}, zipped)
    resumable = tmp_path / "resumable"  # a run directory whose resume state carries the payload
    resumable.mkdir()
    (resumable / "resume.safetensors").write_bytes(blob)
    assert main(["train", "--out", str(resumable), "--resume"]) == 1
    assert "damaged" in capsys.readouterr().err
    for target in [*hostile, run, zipped.parent]:
        for cmd in (["generate", str(target), "x"], ["info", str(target)], ["classify", "--model", str(target)]):
            assert main(cmd) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and ("not an lstm-text model" in err[0] or "damaged" in err[0]), err
    assert not mark.exists()


def test_tampered_and_truncated_model_files(tmp_path, tiny_run, capsys):
    from safetensors.torch import load_file, save_file

    from lstm_text.cli import main

    good = (tiny_run / "model.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(good[: len(good) // 2])
    tensors = load_file(tiny_run / "model.safetensors")
    meta = __import__("safetensors").safe_open(tiny_run / "model.safetensors", "pt").metadata()
    tensors["embed.weight"] = tensors["embed.weight"][:-1]
    save_file(tensors, tmp_path / "shape.safetensors", metadata=meta)
    save_file(
        load_file(tiny_run / "model.safetensors"),
        tmp_path / "newer.safetensors",
        metadata={**meta, "format_version": "99"},
    )
    save_file(load_file(tiny_run / "model.safetensors"), tmp_path / "nometa.safetensors")
    cases = {
        "trunc": "damaged",
        "shape": "do not match",
        "newer": "newer than this lstm-text",
        "nometa": "not an lstm-text model",
    }
    for name, fragment in cases.items():
        assert main(["info", str(tmp_path / f"{name}.safetensors")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], (name, err)

"""Checkpoints are data: hostile or damaged model files are refused and never run, and a failed save is one line."""

import os


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

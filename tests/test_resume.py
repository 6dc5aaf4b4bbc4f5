"""Interrupted runs and --resume: what a signal saves, what --resume may change, and what it says."""

import re

from lstm_text.cli import main


def test_plain_progress_has_tokens_per_second_and_eta_and_resume_says_where(tmp_path, pro_con, capsys, monkeypatch):
    import os
    import signal

    from lstm_text.ui import TrainProgress

    out = tmp_path / "r"
    args = ["train-classifier", str(pro_con), "--out", str(out), "--epochs", "4", "--vocab-size", "60"]
    args += ["--hidden", "8", "--embed", "8", "--batch-size", "8", "--tokenizer", "word"]
    real = TrainProgress.__call__

    def stop_at_10(self, event, info):  # a Ctrl-C mid-run
        real(self, event, info)
        if event == "step" and info["step"] == 10:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TrainProgress, "__call__", stop_at_10)
    assert main(args) == 130
    err = capsys.readouterr().err
    evals = [x for x in err.splitlines() if x.startswith("step ")]
    assert evals and all(" tok/s" in x and " eta " in x for x in evals), err
    monkeypatch.setattr(TrainProgress, "__call__", real)
    assert main(["train-classifier", "--out", str(out), "--resume"]) == 0
    assert re.search(r"^resuming at step 10 of \d+$", capsys.readouterr().err, re.M)

"""Named datasets: the registry, downloads and their hints, and the README that documents them."""

from lstm_text.cli import main


def test_a_misspelt_dataset_name_gets_a_suggestion(tmp_path, capsys):
    assert main(["train", "tinyshakespear", "--out", str(tmp_path / "r"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "file not found: tinyshakespear" in err and "did you mean the dataset 'tinyshakespeare'" in err
    assert not (tmp_path / "r").exists()

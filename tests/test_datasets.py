"""Named datasets: the registry, downloads and their hints, and the README that documents them."""

from lstm_text.cli import main


def test_a_misspelt_dataset_name_gets_a_suggestion(tmp_path, capsys):
    assert main(["train", "tinyshakespear", "--out", str(tmp_path / "r"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "file not found: tinyshakespear" in err and "did you mean the dataset 'tinyshakespeare'" in err
    assert not (tmp_path / "r").exists()


def test_an_offline_dataset_download_names_lstm_text_data_and_the_file(tmp_path, monkeypatch, capsys):
    import urllib.error
    import urllib.request

    from lstm_text.data import datasets

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.delenv("LSTM_TEXT_DATA", raising=False)
    monkeypatch.setattr(datasets, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["train", "tinyshakespeare", "--out", str(tmp_path / "r"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert "Name or service not known" in err and "$LSTM_TEXT_DATA/tinyshakespeare/input.txt" in err
    assert str(tmp_path / "cache" / "tinyshakespeare" / "input.txt") in err


def test_the_readme_documents_every_registered_dataset():
    """The README is the package's long description: a pip user has it, not the repository's data/README.md."""
    from pathlib import Path

    from lstm_text.data.datasets import REGISTRY

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Datasets") :]
    for d in REGISTRY.values():
        assert f"`{d.name}`" in section and f"`{d.file}`" in section and d.sha256 in section
    assert "LSTM_TEXT_DATA" in section

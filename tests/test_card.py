"""Model cards (lstm_text.card): README.md with hub metadata in every run directory and beside the built-in models."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lstm_text.cli import app

from conftest import TINY_MODEL, labelled, tiny_train_config

runner = CliRunner()


def _front_matter(text: str) -> dict:
    """The card's YAML metadata read back: the subset ``card._yaml`` writes (mappings, lists, JSON scalars)."""
    assert text.startswith("---\n")
    lines = text.split("\n---\n", 1)[0].split("\n")[1:]

    def block(i: int, indent: int):
        if lines[i].strip().startswith("- "):
            out = []
            while i < len(lines) and lines[i].startswith(" " * indent + "- "):
                rest = lines[i][indent + 2 :]
                if ": " in rest or rest.endswith(":"):  # a mapping item: its first key on the dash's line
                    lines[i] = " " * (indent + 2) + rest
                    item, i = block(i, indent + 2)
                else:
                    item, i = json.loads(rest), i + 1
                out.append(item)
            return out, i
        out = {}
        while i < len(lines) and lines[i].startswith(" " * indent) and not lines[i][indent:].startswith(" "):
            key, _, value = lines[i][indent:].partition(":")
            if value.strip():
                out[key], i = json.loads(value), i + 1
            else:
                out[key], i = block(i + 1, indent + 2)
        return out, i

    return block(0, 0)[0]


def test_run_card_written_at_the_end_and_updated_on_resume(tmp_path, corpus_file):
    from lstm_text.training.lm import train_lm

    out = tmp_path / "run"
    s = train_lm([str(corpus_file)], out, model=TINY_MODEL, train=tiny_train_config(max_steps=20))
    text = (out / "README.md").read_text(encoding="utf-8")
    meta = _front_matter(text)
    assert meta["license"] == "unknown" and meta["pipeline_tag"] == "text-generation"
    assert meta["datasets"] == [corpus_file.name] and meta["metrics"] == ["bpc"]
    (result,) = meta["model-index"][0]["results"]
    assert meta["model-index"][0]["name"] == "run"
    assert result["metrics"][0]["value"] == round(s["best_val_bpc"], 4)
    assert "- steps: 20" in text and "language: not recorded" in text
    s2 = train_lm([], out, model={}, train=tiny_train_config(max_steps=30), resume=True)
    text = (out / "README.md").read_text(encoding="utf-8")
    assert s2["steps"] == 30 and "- steps: 30" in text
    assert _front_matter(text)["model-index"][0]["results"][0]["metrics"][0]["value"] == round(s2["best_val_bpc"], 4)


def test_classifier_card_has_dev_figures(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "train.tsv").write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(200, 0)))
    (d / "dev.tsv").write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in labelled(40, 1)))
    args = ["train-classifier", str(d / "train.tsv"), "--dev", str(d / "dev.tsv"), "--out", str(tmp_path / "clf")]
    r = runner.invoke(app, [*args, "--epochs", "1", "--hidden", "8", "--embed", "8", "--vocab-size", "300"])
    assert r.exit_code == 0, r.output
    info = json.loads(runner.invoke(app, ["info", str(tmp_path / "clf"), "--json"]).stdout)
    meta = _front_matter((tmp_path / "clf" / "README.md").read_text(encoding="utf-8"))
    assert meta["pipeline_tag"] == "text-classification" and meta["metrics"] == ["accuracy", "f1"]
    values = {m["type"]: m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert values["accuracy"] == round(info["training"]["dev_accuracy"], 4)
    assert info["card"]["file"] == str(tmp_path / "clf" / "README.md")


def test_builtin_cards_are_shipped_current_and_shown_by_info():
    from lstm_text import pretrained
    from lstm_text.card import card_facts, render
    from lstm_text.checkpoint import read_model

    for name in pretrained.NAMES:
        ckpt = read_model(name)
        shipped = (pretrained.HERE / name / "README.md").read_text(encoding="utf-8")
        assert shipped == render(card_facts(ckpt)), f"make pretrained writes {name}'s card again"
        meta = _front_matter(shipped)
        assert meta["language"] == ["en"] and meta["license"] == "other"
        assert all(0.4 < r["metrics"][0]["value"] <= 1 for r in meta["model-index"][0]["results"])
        assert "Data and licences" in shipped and "GloVe" in shipped
    r = runner.invoke(app, ["info", "sentiment"])
    assert r.exit_code == 0 and "card: language" in r.stdout and "0.8612" in r.stdout
    info = json.loads(runner.invoke(app, ["info", "sentiment", "--json"]).stdout)
    assert info["card"]["language"].startswith("en, am, ar, ")  # the built-in multilingual's languages follow English
    assert "stanford" not in info["card"]["data"]

"""An error carries the parameter it concerns; each front end says it in its own words (no message is parsed)."""

import pytest

import lstm_text
from lstm_text.cli import main
from lstm_text.errors import LstmTextError, flag, notice, render


def test_placeholders_render_per_front_end_and_braces_escape():
    e = LstmTextError(
        "{temperature} must be in [0.001, 1000] ({greedy}: deterministic output; {{content}})", "temperature"
    )
    assert e.param == "temperature"
    assert str(e) == "temperature must be in [0.001, 1000] (greedy: deterministic output; {content})"
    assert e.render(flag) == "--temperature must be in [0.001, 1000] (--greedy: deterministic output; {content})"
    assert render("{Not} a {name-with-dash} nor {x y}") == "{Not} a {name-with-dash} nor {x y}"  # only {snake_case}
    assert notice("give {epochs} N") == {"message": "give epochs N", "template": "give {epochs} N"}


def test_one_bad_option_in_python_and_on_the_command_line(tiny_run, capsys):
    with pytest.raises(LstmTextError) as e:
        lstm_text.load(tiny_run).generate("a", max_tokens=2, top_p=2.0)
    assert e.value.param == "top_p" and str(e.value).startswith("top_p must be in [1e-06, 1]")
    assert "--" not in str(e.value)

    assert main(["generate", str(tiny_run), "a", "--top-p", "2"]) == 1
    assert capsys.readouterr().err.startswith("error: --top-p must be in [1e-06, 1]")


def test_the_cli_says_a_parameter_as_the_running_command_names_it(tmp_path, corpus_file, capsys):
    """``out`` is ``--out`` (not ``-o``); a library parameter the command lacks falls back to ``--name``."""
    (tmp_path / "run").write_text("not a directory")
    assert main(["train", str(corpus_file), "-o", str(tmp_path / "run"), "--max-steps", "1"]) == 1
    assert capsys.readouterr().err.startswith(f"error: --out {tmp_path / 'run'} exists and is not a directory")
    with pytest.raises(LstmTextError) as e:
        lstm_text.train(corpus_file, tmp_path / "run", max_steps=1)
    assert str(e.value).startswith(f"out {tmp_path / 'run'} exists") and e.value.param == "out"


def test_a_library_name_the_command_line_spells_otherwise(tiny_run, capsys):
    """probe's ``signal`` is inspect's ``--find``: the command's own option names it, not ``--signal``."""
    from lstm_text import probe

    with pytest.raises(LstmTextError) as e:
        probe.view(lstm_text.load(tiny_run).inspect("the king"), signal="(")
    assert e.value.param == "signal" and str(e.value).startswith("signal '(' is neither a built-in signal")
    assert main(["inspect", str(tiny_run), "the king", "--find", "("]) == 1
    assert capsys.readouterr().err.startswith("error: --find '(' is neither a built-in signal")

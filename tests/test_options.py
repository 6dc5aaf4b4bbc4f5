"""One source for each option: the command line, the Python API and the HTTP server agree on every default
they share, and the command line's choices are the configs' (each is derived from the config fields; these
tests fail if a front end grows a default of its own)."""

import dataclasses
import inspect

import pytest
from typer.main import get_command

from lstm_text import api, config
from lstm_text.cli import app
from lstm_text.config import CLASSIFIER, ClassifyConfig, GenerateConfig, ModelConfig, TrainConfig

COMMANDS = get_command(app).commands


def cli_defaults(command: str, given: bool = False) -> dict:
    """The defaults of a command's options by parameter name (an enum's as its value, as Typer keeps it);
    ``given``: only those that are not None (None: not given, the library's own default applies)."""
    return {p.name: p.default for p in COMMANDS[command].params if not given or p.default is not None}


def fields(cls) -> dict:
    """A config's defaults (not its required fields)."""
    return {
        f.name: config.default_of(cls, f.name)
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def same(a, b) -> bool:
    """Equal defaults; no stop strings are None on the command line and over HTTP, [] in the config."""
    return a == b or (a in (None, []) and b in (None, []))


def shared(a: dict, b: dict) -> list[str]:
    names = sorted(a.keys() & b.keys())
    assert names, "nothing shared: a renamed option?"
    return names


def disagree(a: dict, b: dict, only=None) -> dict:
    """The defaults ``a`` and ``b`` both have (of the names ``only``, if given) that differ."""
    names = [k for k in shared(a, b) if only is None or k in only]
    assert names, "nothing shared: a renamed option?"
    return {k: (a[k], b[k]) for k in names if not same(a[k], b[k])}


def signature_defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


# -- the command line against the configs ---------------------------------------------------------------------
def test_generate_options_default_to_the_generate_config():
    assert disagree(cli_defaults("generate"), fields(GenerateConfig)) == {}
    assert set(fields(GenerateConfig)) <= set(cli_defaults("generate"))  # every sampling option is on the CLI


def test_classify_options_default_to_the_classify_config():
    assert disagree(cli_defaults("classify"), fields(ClassifyConfig)) == {}
    assert set(fields(ClassifyConfig)) <= set(cli_defaults("classify"))


def test_train_classifier_options_default_to_the_classifier_configs():
    """train-classifier starts from ``classifier_train()`` and ``classifier_model()`` (TrainConfig and ModelConfig
    with ``CLASSIFIER``'s defaults); an option left None there is settled from the data or by ``--init``."""
    cli = {k: v for k, v in cli_defaults("train-classifier").items() if v is not None}
    assert disagree(cli, config.classifier_train().to_dict()) == {}
    assert disagree(cli, config.classifier_model()) == {}
    assert cli["lr"] == CLASSIFIER.lr and cli["hidden"] == CLASSIFIER.hidden


def test_train_options_say_the_config_defaults():
    """train's options are None (a resumed run keeps its own), and their help says the configs' defaults."""
    cmd = COMMANDS["train"]
    checked = []
    for p in cmd.params:
        for cls in (TrainConfig, ModelConfig):
            if p.name in fields(cls) and p.name not in config.STOPPING_RULES:
                assert p.default is None, p.name
                v = config.default_of(cls, p.name)
                shown = str(v).lower() if isinstance(v, bool) else str(v)
                assert p.help.endswith(f"[default: {shown}]"), (p.name, p.help)
                checked.append(p.name)
    assert {"lr", "hidden", "tokenizer", "keep_resume"} <= set(checked)


@pytest.mark.parametrize(
    "command, name, values",
    [
        ("train", "tokenizer", config.TOKENIZERS),
        ("train", "device", config.DEVICES),
        ("train", "precision", config.PRECISIONS),
        ("train-classifier", "tokenizer", config.TOKENIZERS),
        ("train-classifier", "device", config.DEVICES),
    ],
)
def test_choices_are_the_configs(command, name, values):
    p = next(p for p in COMMANDS[command].params if p.name == name)
    assert tuple(p.type.choices) == values == config.choices_of(TrainConfig, name)


# -- the Python API -------------------------------------------------------------------------------------------
def test_the_python_api_defaults_are_the_configs_and_the_clis():
    lines = signature_defaults(api.Model.classify_lines)
    assert disagree(lines, fields(ClassifyConfig)) == {}
    assert set(lines) == set(fields(ClassifyConfig)) - {"lang"}  # a column of the CLI's text output; results carry lang
    assert disagree(signature_defaults(api.Model.classify), fields(ClassifyConfig)) == {}
    assert disagree(signature_defaults(api.Model.classify), cli_defaults("classify")) == {}
    assert disagree(signature_defaults(api.Model.generate), cli_defaults("generate", given=True)) == {}  # num_samples


# -- the server -----------------------------------------------------------------------------------------------
def request_defaults(model) -> dict:
    return {k: f.default for k, f in model.model_fields.items()}


def test_the_server_defaults_are_the_configs_and_the_clis():
    pytest.importorskip("pydantic")
    from lstm_text.serve.schemas import ClassifyRequest, GenerateRequest, OpenAIRequest

    generate, classify = request_defaults(GenerateRequest), request_defaults(ClassifyRequest)
    assert disagree(generate, fields(GenerateConfig)) == {}
    assert set(fields(GenerateConfig)) <= set(generate)
    assert disagree(generate, cli_defaults("generate", given=True)) == {}
    assert disagree(classify, fields(ClassifyConfig)) == {}
    assert disagree(classify, cli_defaults("classify"), only=fields(ClassifyConfig)) == {}  # --model: a name
    assert disagree(classify, signature_defaults(api.Model.classify_lines)) == {}
    # OpenAI's own fields keep OpenAI's defaults (max_tokens 16, temperature 0 meaning greedy); its extensions
    # are lstm-text generate's
    extensions = {
        k: v for k, v in request_defaults(OpenAIRequest).items() if k in ("top_k", "min_p", "repetition_penalty")
    }
    assert len(extensions) == 3 and disagree(extensions, fields(GenerateConfig)) == {}


def test_the_server_describes_a_field_as_the_cli_helps_it():
    pytest.importorskip("pydantic")
    from lstm_text.serve.schemas import ClassifyRequest, GenerateRequest

    assert GenerateRequest.model_fields["top_p"].description == config.help_of(GenerateConfig, "top_p")
    threshold = ClassifyRequest.model_fields["threshold"].description
    assert threshold == "Below this top probability, answer abstain_label."  # a parameter named in its own words
    cli = next(p for p in COMMANDS["classify"].params if p.name == "threshold")
    assert cli.help == "Below this top probability, answer --abstain-label."

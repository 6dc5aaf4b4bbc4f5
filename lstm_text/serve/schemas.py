"""Request bodies of the HTTP API (pydantic models: FastAPI validates them and documents them at /docs).

Ranges of the sampling options are checked by ``GenerateConfig`` (one set of rules for the CLI, the Python API
and the server); the server's own bounds (``limits.Limits``) are checked by the handlers, naming the limit.
The fields the CLI shares take their defaults and descriptions from the config fields (``config.ClassifyConfig``,
``config.GenerateConfig``), as the CLI's options do.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..config import ClassifyConfig, GenerateConfig, default_of, help_of

SEED = Field(None, ge=-(2**63), le=2**64 - 1, description="Same seed, same text.")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole_characters(s: str) -> str:
    """JSON may escape half of a UTF-16 pair ("\\ud800"): such a string has no UTF-8 form, so no answer could
    carry it back. Refused here, naming the field (it was a 500 with a UnicodeEncodeError)."""
    if m := _SURROGATE.search(s):
        raise ValueError(f"holds a lone surrogate (\\u{ord(m[0]):04x} at character {m.start()}), not text")
    return s


Text = Annotated[str, AfterValidator(_whole_characters)]  # every string a request sends


def _option(cls, name: str, **kw):
    """The request field of config field ``name`` of ``cls``: its default, and its help as the description."""
    return Field(default_of(cls, name), **{"description": help_of(cls, name), **kw})


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    texts: list[Text] = Field(description="Texts to classify; the results come back in this order.")
    model: Text | None = Field(None, description="A served model's name (default: the first classifier).")
    threshold: float = _option(ClassifyConfig, "threshold", ge=0.0, lt=1.0)
    abstain_label: Text = _option(
        ClassifyConfig, "abstain_label", description="Answered under threshold (see lstm-text serve --max-label)."
    )
    explain: bool = _option(ClassifyConfig, "explain")


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    prompt: Text = Field("", description="Text to continue; the response holds the continuation only.")
    model: Text | None = Field(None, description="A served model's name (default: the first language model).")
    max_tokens: int = _option(GenerateConfig, "max_tokens")
    temperature: float = _option(GenerateConfig, "temperature")
    top_k: int = _option(GenerateConfig, "top_k")
    top_p: float = _option(GenerateConfig, "top_p")
    min_p: float = _option(GenerateConfig, "min_p")
    repetition_penalty: float = _option(GenerateConfig, "repetition_penalty")
    stop: list[Text] | Text | None = Field(None, description="End the text at the first of these strings.")
    seed: int | None = SEED
    greedy: bool = _option(GenerateConfig, "greedy")
    stream: bool = Field(False, description="Send the text as server-sent events as it is produced.")


class StreamOptions(BaseModel):
    include_usage: bool = False


class OpenAIRequest(BaseModel):
    """The fields OpenAI's completions and chat completions requests share, as lstm-text reads them. Unknown fields
    are ignored, as OpenAI-compatible servers do."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model: Text | None = None
    temperature: float | None = 1.0  # 0: greedy, as OpenAI's API reads it
    top_p: float | None = 1.0
    n: int | None = 1
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: Text | list[Text] | None = None
    seed: int | None = SEED
    presence_penalty: float | None = 0.0
    frequency_penalty: float | None = 0.0
    logit_bias: dict[str, float] | None = None
    user: Text | None = None
    # extensions (the openai client sends them with extra_body=...), as in lstm-text generate
    top_k: int = default_of(GenerateConfig, "top_k")
    min_p: float = default_of(GenerateConfig, "min_p")
    repetition_penalty: float = default_of(GenerateConfig, "repetition_penalty")


class CompletionRequest(OpenAIRequest):
    """OpenAI's legacy completions request; the fields lstm-text cannot honour (logprobs, penalties, logit_bias,
    suffix, best_of != n) are refused."""

    prompt: Text | list[Text] | list[int] | list[list[int]] = ""
    max_tokens: int | None = 16
    echo: bool | None = False
    logprobs: int | None = None
    best_of: int | None = None
    suffix: Text | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Text
    content: Text | list[dict] | None = None
    name: Text | None = None


class ChatRequest(OpenAIRequest):
    """OpenAI's chat completions request; the fields lstm-text cannot honour (tools, functions, response_format,
    logprobs, penalties, logit_bias) are refused."""

    messages: list[ChatMessage] = Field(description="The conversation; the reply continues it as the assistant.")
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list | None = None
    tool_choice: str | dict | None = None
    functions: list | None = None
    function_call: str | dict | None = None
    response_format: dict | None = None

"""``serve`` (the HTTP API) and ``bench`` (this machine's speed)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

import lstm_text

from ..data import read_text
from ..errors import LstmTextError
from ..serve.chat import ChatTemplate
from ..serve.limits import Limits  # stdlib only: serve's options derive from its fields
from .options import option


class ServeQuantize(str, Enum):
    auto = "auto"
    none = "none"
    int8 = "int8"


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def serve(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to serve: run directories, model files or built-in names \\[default: sentiment]. A request"
            " names one by its built-in name, its run directory's basename, or a model file's directory name"
            " (model.safetensors) or stem; NAME=PATH gives it a name of your own.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface; use --api-key).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="LSTM_TEXT_API_KEY",
            help="Require 'Authorization: Bearer KEY' on every request but /healthz.",
            show_default=False,
        ),
    ] = None,
    max_body: int = option(Limits, "max_body"),
    max_texts: int = option(Limits, "max_texts"),
    max_chars: int = option(Limits, "max_chars"),
    max_label: int = option(Limits, "max_label"),
    max_tokens: int = option(Limits, "max_tokens"),
    max_n: int = option(Limits, "max_n"),
    max_stop_chars: int = option(Limits, "max_stop_chars"),
    workers: int = option(Limits, "workers"),
    max_queue: int = option(Limits, "max_queue"),
    batch_wait_ms: float = option(Limits, "batch_wait_ms"),
    drain_timeout: float = option(Limits, "drain_timeout"),
    limit_concurrency: int = option(Limits, "limit_concurrency"),
    request_timeout: float = option(Limits, "request_timeout"),
    quantize: Annotated[
        ServeQuantize,
        typer.Option(
            help="auto: int8 weights for language models' generation steps (16 streams 5.2x the tokens/s of one, "
            "against 3.2x in fp32; bpc +0.03%), classifiers as trained; none: fp32 throughout; int8: int8 for both "
            "(see generate and classify)."
        ),
    ] = ServeQuantize.auto,
    chat_template: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="TOML file of how /v1/chat/completions writes a conversation as text (default: User:/Assistant:"
            " turns; see the README).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn's log level (info logs each request).")] = LogLevel.info,
):
    """Serve models over a local HTTP API: POST /v1/classify, /v1/generate (server-sent events with stream),
    OpenAI-compatible /v1/completions and /v1/chat/completions; GET / (a page to try them), /v1/models, /healthz,
    /metrics (Prometheus), /docs.

    Needs the serve extra (pip install 'lstm-text\\[serve]'). SIGTERM finishes the requests in flight, then exits 0."""
    try:
        import fastapi  # noqa: F401
        import swagger_ui_bundle  # noqa: F401  (/docs without the internet)
        import uvicorn  # noqa: F401
    except ImportError:
        raise LstmTextError("serve needs the serve extra: pip install 'lstm-text[serve]'") from None
    from ..serve.server import load_models, run

    limits = Limits(
        max_body=max_body,
        max_texts=max_texts,
        max_chars=max_chars,
        max_label=max_label,
        max_tokens=max_tokens,
        max_n=max_n,
        max_stop_chars=max_stop_chars,
        workers=workers,
        max_queue=max_queue,
        batch_wait_ms=batch_wait_ms,
        drain_timeout=drain_timeout,
        limit_concurrency=limit_concurrency,
        request_timeout=request_timeout,
    )
    template = ChatTemplate.load(chat_template) if chat_template else None
    served = load_models(models, quantize.value)
    run(served, host=host, port=port, limits=limits, api_key=api_key, log_level=log_level.value, chat=template)


def bench(
    lm: Annotated[
        str | None, typer.Option(help="Time this language model's sizes (default: the default config).")
    ] = None,
    classifier: Annotated[str, typer.Option(help="Classifier to time ('' to skip).")] = "sentiment",
    lines: Annotated[Path | None, typer.Option(help="File of lines to classify (default: synthetic SST-like).")] = None,
    quick: Annotated[bool, typer.Option(help="Tiny counts: a smoke check, figures are noise.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
):
    """Measure this machine: GEMM GFLOP/s, training and generation speed as ratios of it, classification lines/s."""
    from .. import bench as b
    from ..ui import bench_report, out, warn

    cfg = lstm_text.load(lm).cfg if lm else None
    clf = None
    if classifier:
        try:
            clf = lstm_text.load(classifier)
        except lstm_text.LstmTextError as e:
            warn(f"classification not timed: {e}")
    texts = read_text(lines).splitlines() if lines else None
    r = b.run(cfg=cfg, quick=quick, classifier=clf, lines=texts)
    if as_json:
        print(json.dumps(r))
    else:
        bench_report(out(), r)

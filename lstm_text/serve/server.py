"""Loading the served models by name, and running uvicorn: its own listening socket (a clear error when the
address is taken), and SIGTERM draining the requests in flight, then exiting 0."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
from pathlib import Path

from ..errors import LstmTextError
from .limits import Limits

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def model_name(spec: str) -> tuple[str, str]:
    """(name, what to load) of a command-line MODEL.

    ``NAME=PATH`` names it; otherwise a run directory is named by its basename, a model file by its directory's
    name (``run/model.safetensors``) or its stem (``other.safetensors``), and a built-in model by its own name.
    """
    name, sep, path = spec.partition("=")
    if sep and NAME.fullmatch(name) and not Path(spec).exists():
        return name, path
    p = Path(spec)
    if p.is_dir():
        return p.resolve().name, spec
    if p.is_file():
        return (p.resolve().parent.name if p.name == "model.safetensors" else p.stem), spec
    return spec, spec  # a built-in name; ``load`` says when it is not one


def load_models(specs: list[str] | None, quantize: str = "auto") -> dict:
    """{name: ``api.Model``} of the MODEL arguments (the built-in ``sentiment`` when none), with each model's
    inference paths built now, so that no request pays for it and no two requests build one at once.

    ``quantize``: "auto" steps a language model's generations with int8 weights (a batch of 16 rows costs ~0.3 ms
    instead of ~0.8 ms in fp32 on a 2-core CPU, for +0.03% bpc) and leaves a classifier as trained; "none" (or "")
    fp32 throughout; "int8" int8 for every model (``api.load``)."""
    from ..api import Model, load

    models: dict = {}
    for spec in specs or ["sentiment"]:
        name, path = model_name(spec)
        m = load(path, quantize="" if quantize in ("auto", "none") else quantize)
        if quantize == "auto" and m.has_lm and m.device == "cpu":
            m = Model(m.ckpt, m.device, "int8")
        if not NAME.fullmatch(name):
            raise LstmTextError(f"{name!r} cannot name a served model (letters, digits, '.', '_', '-'): use NAME=PATH")
        if name in models:
            raise LstmTextError(f"two models are named {name!r}: name one with NAME=PATH")
        if m.labels:
            m.classifier  # noqa: B018  (built on first use)
        if m.has_lm:
            m.net  # noqa: B018
        models[name] = m
    return models


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a taken or unknown address is one clear error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without
        # it a keep-alive client waits 40 ms (delayed ACK) for each answer written in two parts
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise LstmTextError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(
    models: dict,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits | None = None,
    api_key: str | None = None,
    log_level: str = "info",
    chat=None,
) -> None:
    """Serve ``models`` until SIGINT or SIGTERM. SIGTERM: stop accepting, finish the requests in flight (at most
    ``limits.drain_timeout`` seconds), then return, so the process exits 0."""
    import uvicorn

    from .app import create_app

    limits = limits or Limits()
    if any(m.has_lm for m in models.values()) and "OMP_NUM_THREADS" not in os.environ:
        import torch

        # a model's generations are stepped by one thread as one batch, and the HTTP side needs the other core:
        # intra-op threads only contend (one stream of the default model: 2,090 tokens/s on one thread, 1,830
        # on two, 2-core CPU)
        torch.set_num_threads(1)
    sock = listen(host, port)
    app = create_app(models, limits, api_key, chat)
    from .connections import guarded_protocol

    _enough_descriptors(limits.limit_concurrency)
    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        log_level=log_level,
        access_log=log_level in ("info", "debug", "trace"),
        # uvicorn annotates int but hands it to asyncio.timeout, which takes float seconds (a drain_timeout of 2.5)
        timeout_graceful_shutdown=limits.drain_timeout,  # type: ignore[arg-type]
        lifespan="on",
    )
    server = uvicorn.Server(config)
    bound = sock.getsockname()
    logging.getLogger("uvicorn.error").info(
        "serving %s on http://%s:%d (API docs at /docs)", ", ".join(models), host, bound[1]
    )
    # uvicorn drains on SIGTERM, then raises the signal again for the handler it found: a handler that does
    # nothing there lets the drained server return (exit 0), as service managers expect of a clean stop
    main = threading.current_thread() is threading.main_thread()  # only the main thread has signal handlers
    previous = signal.signal(signal.SIGTERM, lambda *_: None) if main else None
    try:
        server.run(sockets=[sock])
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        sock.close()


def _enough_descriptors(connections: int) -> None:
    """Raise the soft limit on open files to hold ``connections`` and the server's own (models, logs, pipes):
    past it, accept() fails, and asyncio logs a traceback per attempt."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = connections + 256
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise LstmTextError(
            f"{{limit_concurrency}} {connections} needs {need} open files, over this system's limit of {hard} "
            "(ulimit -Hn): give a smaller {limit_concurrency}",
            "limit_concurrency",
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

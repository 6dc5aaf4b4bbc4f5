"""The FastAPI app: the shared ``ServerState``, the exception handlers and the routers of ``routes`` (one per
area), over one ``ClassifyBatcher`` per classifier and a ``GenerationPool`` (``web`` holds the HTTP plumbing:
error bodies, the auth/body-limit/metrics gate, SSE).

CPU work never runs on the event loop: classify requests go to a batcher's thread, generations to the pool's
threads (torch and NumPy release the GIL inside their operations). Models are chosen by name among those loaded
at start (``server.load_models``): no request names a file.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import LstmTextError
from .chat import ChatTemplate
from .limits import ApiError, Busy, Limits
from .routes import classify, generate, meta, openai
from .state import ServerState
from .web import Gate, error_response

log = logging.getLogger("uvicorn.error")


def create_app(
    models: dict, limits: Limits | None = None, api_key: str | None = None, chat: ChatTemplate | None = None
) -> FastAPI:
    """The app serving ``models`` ({name: ``api.Model``}, loaded and warmed by ``server.load_models``); ``chat``:
    how /v1/chat/completions writes a conversation as text (default ``ChatTemplate()``)."""
    limits = limits or Limits()
    server = ServerState(models, limits, chat or ChatTemplate())

    @asynccontextmanager
    async def lifespan(app):
        yield
        # on SIGTERM uvicorn has stopped accepting and waited for the requests in flight; finish the queued work
        await asyncio.to_thread(server.close)

    app = FastAPI(
        title="lstm-text",
        version=__version__,
        description="LSTM language models and classifiers: classify, generate, OpenAI-compatible completions.",
        lifespan=lifespan,
        docs_url=None,  # /docs is served by routes.meta from the installed swagger-ui-bundle: it works offline
        redoc_url=None,
        # with a key, /docs gets an Authorize button (the Gate checks the token; this only declares it)
        dependencies=[Depends(HTTPBearer(auto_error=False))] if api_key else None,
    )
    app.state.server = server
    app.add_middleware(
        Gate, metrics=server.metrics, api_key=api_key, max_body=limits.max_body, open_requests=server.open_requests
    )

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return error_response(e.status, e.message, e.param, e.code)

    @app.exception_handler(LstmTextError)
    async def _library_error(request, e: LstmTextError):
        return error_response(422, e.render(), e.param)  # a request names fields as Python does: top_p

    @app.exception_handler(Busy)
    async def _busy(request, e: Busy):
        return error_response(
            503, f"the server is busy: {e}; retry later", code="queue_full", headers={"Retry-After": "1"}
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, e: RequestValidationError):
        errors: list[dict[str, Any]] = list(e.errors())
        first: dict[str, Any] = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
        if first["type"] == "json_invalid":
            why = (first.get("ctx") or {}).get("error", "")
            return error_response(400, f"the request body is not valid JSON ({why})".replace(" ()", ""))
        # a field of several types (prompt: a string or a list) fails once per type: our own check says most
        first = next((x for x in errors if x["type"] == "value_error"), first)
        fields = [str(x) for x in first["loc"][1:] if isinstance(x, int) or re.fullmatch(r"[A-Za-z_]\w*", str(x))]
        param = ".".join(fields) or None
        msg = first["msg"].removeprefix("Value error, ")
        if param is None:  # the body itself: none, or not read as JSON
            msg = "the request body must be a JSON object, sent with the header 'Content-Type: application/json'"
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        return error_response(422, f"{param}: {msg}{more}" if param else msg + more, param, first["type"] or None)

    @app.exception_handler(HTTPException)
    async def _http(request, e: HTTPException):
        return error_response(e.status_code, str(e.detail), headers=dict(e.headers) if e.headers else None)

    @app.exception_handler(Exception)
    async def _bug(request, e: Exception):
        log.exception("internal error answering %s", request.url.path)
        return error_response(500, f"internal error: {type(e).__name__}: {e}")

    for area in (classify, generate, openai, meta):
        app.include_router(area.router)
    meta.mount_docs_assets(app)
    return app

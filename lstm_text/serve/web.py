"""HTTP pieces the routes stand on: OpenAI-style error bodies, the ``Gate`` middleware (metrics, the bearer token,
the body-size limit) and server-sent event responses of generation jobs."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from .generation import Job
from .limits import ApiError
from .metrics import Metrics

ENDPOINTS = {
    "/v1/classify",
    "/v1/generate",
    "/v1/completions",
    "/v1/chat/completions",
    "/v1/models",
    "/healthz",
    "/metrics",
}
# answered without the API key: probes, the API's schema and docs, the page at / (which asks for the key)
OPEN_PATHS = {"/", "/healthz", "/docs", "/openapi.json"}
ERROR_TYPES = {401: "authentication_error", 404: "not_found_error", 500: "server_error", 503: "overloaded_error"}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
log = logging.getLogger("uvicorn.error")


def error_response(
    status: int, message: str, param: str | None = None, code: str | None = None, headers: dict | None = None
) -> JSONResponse:
    """The error body OpenAI's API answers (and its client reads): {"error": {"message", "type", "param", "code"}}."""
    kind = ERROR_TYPES.get(status, "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status, headers)


def over(param: str, value: int, unit: str, limit: int, flag: str) -> ApiError:
    """422 naming the limit: "texts: 300 texts, over this server's limit of 256 (lstm-text serve --max-texts)"."""
    return ApiError(
        422, f"{param}: {value:,} {unit}, over this server's limit of {limit:,} (lstm-text serve {flag})", param
    )


class Gate:
    """ASGI middleware before every request: its metrics, the bearer token, and the body-size limit (checked
    on Content-Length, then on the bytes as they arrive, so an oversized body is never held whole)."""

    def __init__(self, app, *, metrics: Metrics, api_key: str | None, max_body: int, open_requests: Counter):
        self.app, self.metrics, self.max_body = app, metrics, max_body
        self.api_key = api_key.encode() if api_key else None
        self.open = open_requests  # endpoint -> requests being answered (classify batches wait for arriving ones)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        start, status = time.perf_counter(), 499  # stays 499 (nginx's "client closed request") if nothing is sent
        self.open[endpoint] += 1

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.guarded(scope, receive, send_status)
        finally:
            self.open[endpoint] -= 1
            self.metrics.inc("lstm_text_requests_total", endpoint=endpoint, status=str(status))
            self.metrics.observe("lstm_text_request_seconds", time.perf_counter() - start, endpoint=endpoint)

    async def guarded(self, scope, receive, send):
        headers = dict(scope["headers"])
        if self.api_key and scope["path"] not in OPEN_PATHS and not scope["path"].startswith("/docs/assets/"):
            token = headers.get(b"authorization", b"")
            if not (token[:7].lower() == b"bearer " and hmac.compare_digest(token[7:].strip(), self.api_key)):
                answer = error_response(
                    401,
                    "missing or wrong API key: send the header 'Authorization: Bearer KEY'",
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
                return await answer(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        too_big = error_response(
            413,
            f"the request body is over this server's limit of {self.max_body:,} bytes (lstm-text serve --max-body)",
            code="body_too_large",
        )
        try:
            length = int(headers.get(b"content-length", b"0"))
        except ValueError:
            return await error_response(400, "Content-Length is not a number")(scope, receive, send)
        if length > self.max_body:
            return await too_big(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return await too_big(scope, receive, send)
            if not message.get("more_body"):
                break
        body = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return body.pop() if body else await receive()

        await self.app(scope, replay, send)


class EventStream(StreamingResponse):
    """Server-sent events of a generation job; the job stops when the response ends for any reason (the client
    went away: Starlette cancels the stream when it reads the disconnect)."""

    media_type = "text/event-stream"

    def __init__(self, content, job: Job):
        super().__init__(content, headers=SSE_HEADERS)
        self.job = job

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.cancel.set()
            await self.body_iterator.aclose()


def sse(data: dict | str, event: str | None = None) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {text}\n\n"


def failure_event(job: Job, event: str | None = None) -> str | None:
    """The SSE error event of a streamed job whose generation failed (logged here, once), or None."""
    o = job.outcome
    if o.error is None:
        return None
    log.error("generation failed: %s: %s", type(o.error).__name__, o.error)
    return sse({"error": {"message": f"internal error: {o.error}", "type": "server_error"}}, event)


async def collect(job: Job, request: Request, n: int) -> list[str]:
    """The ``n`` texts of a non-streaming job; a client that goes away meanwhile stops it."""

    async def watch():
        while not job.cancel.is_set():
            if await request.is_disconnected():
                job.cancel.set()
                return
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    parts: list[list[str]] = [[] for _ in range(n)]
    try:
        async for items in job.batches():
            for i, piece in items:
                parts[i].append(piece)
    finally:
        watcher.cancel()
    if job.outcome.error is not None:
        raise job.outcome.error
    if job.outcome.cancelled:  # the client has gone: nobody reads the answer (499, nginx's "client closed request")
        raise ApiError(499, "the client closed the request", code="client_closed_request")
    return ["".join(p) for p in parts]


def usage(job: Job) -> dict:
    o = job.outcome
    return {
        "prompt_tokens": o.prompt_tokens,
        "completion_tokens": sum(o.tokens),
        "total_tokens": o.prompt_tokens + sum(o.tokens),
    }

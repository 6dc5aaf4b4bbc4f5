"""The FastAPI app: the routes and their exception handlers, over one ``ClassifyBatcher`` per classifier and a
``GenerationPool`` (``web`` holds the HTTP plumbing: error bodies, the auth/body-limit/metrics gate, SSE).

CPU work never runs on the event loop: classify requests go to a batcher's thread, generations to the pool's
threads (torch and NumPy release the GIL inside their operations). Models are chosen by name among those loaded
at start (``server.load_models``): no request names a file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..config import GenerateConfig
from ..errors import LstmTextError
from .batcher import ClassifyBatcher
from .chat import ChatTemplate
from .generation import GenerationPool
from .limits import ApiError, Busy, Limits
from .metrics import Metrics
from .schemas import ChatRequest, ClassifyRequest, CompletionRequest, GenerateRequest
from .web import EventStream, Gate, collect, error_response, over, sse, usage

log = logging.getLogger("uvicorn.error")
PAGE = Path(__file__).with_name("page.html")  # GET /: one self-contained page to try the models


def failure_event(job, event: str | None = None) -> str | None:
    """The SSE error event of a streamed job whose generation failed (logged here, once), or None."""
    o = job.outcome
    if o.error is None:
        return None
    log.error("generation failed: %s: %s", type(o.error).__name__, o.error)
    return sse({"error": {"message": f"internal error: {o.error}", "type": "server_error"}}, event)


def create_app(
    models: dict, limits: Limits | None = None, api_key: str | None = None, chat: ChatTemplate | None = None
) -> FastAPI:
    """The app serving ``models`` ({name: ``api.Model``}, loaded and warmed by ``server.load_models``); ``chat``:
    how /v1/chat/completions writes a conversation as text (default ``ChatTemplate()``)."""
    limits = limits or Limits()
    chat = chat or ChatTemplate()
    metrics = Metrics()
    open_requests: Counter = Counter()

    def arriving() -> int:  # classify requests received and not yet queued (read by the batchers' threads)
        return open_requests["/v1/classify"] - sum(b.unanswered for b in batchers.values())

    batchers = {
        name: ClassifyBatcher(
            name,
            m,
            max_queue=limits.max_queue,
            max_batch=limits.max_batch,
            wait_s=limits.batch_wait_ms / 1000,
            metrics=metrics,
            arriving=arriving,
        )
        for name, m in models.items()
        if m.labels
    }
    pool = GenerationPool(limits, metrics)
    started = int(time.time())

    def close() -> None:
        pool.close()
        for b in batchers.values():
            b.close()

    @asynccontextmanager
    async def lifespan(app):
        yield
        # on SIGTERM uvicorn has stopped accepting and waited for the requests in flight; finish the queued work
        await asyncio.to_thread(close)

    app = FastAPI(
        title="lstm-text",
        version=__version__,
        description="LSTM language models and classifiers: classify, generate, OpenAI-compatible completions.",
        lifespan=lifespan,
        docs_url=None,  # /docs is served below from the installed swagger-ui-bundle: it works offline
        redoc_url=None,
        # with a key, /docs gets an Authorize button (the Gate checks the token; this only declares it)
        dependencies=[Depends(HTTPBearer(auto_error=False))] if api_key else None,
    )
    app.add_middleware(Gate, metrics=metrics, api_key=api_key, max_body=limits.max_body, open_requests=open_requests)

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
        errors = e.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
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
        return error_response(e.status_code, str(e.detail), headers=e.headers)

    @app.exception_handler(Exception)
    async def _bug(request, e: Exception):
        log.exception("internal error answering %s", request.url.path)
        return error_response(500, f"internal error: {type(e).__name__}: {e}")

    def not_served(name: str) -> ApiError:
        return ApiError(
            404, f"model {name!r} is not served here (served: {', '.join(models)})", "model", "model_not_found"
        )

    def pick(name: str | None, task: str):
        can = (lambda m: bool(m.labels)) if task == "classify" else (lambda m: m.has_lm)
        if name is None:
            found = next(((n, m) for n, m in models.items() if can(m)), None)
            if found is None:
                raise ApiError(422, f"no model served here can {task} (served: {', '.join(models)})", "model")
            return found
        if name not in models:
            raise not_served(name)
        if not can(models[name]):
            why = "it has no classification head" if task == "classify" else "it has no language-model head"
            raise ApiError(422, f"model {name!r} cannot {task}: {why}", "model")
        return name, models[name]

    def sampling(prompts: list[str], max_tokens: int, also_stop: tuple = (), **options) -> GenerateConfig:
        """The request's sampling settings after checking the server's limits; ``also_stop``: the server's own
        stop strings (a chat template's turn markers), not counted against ``--max-stop-chars``."""
        if max_tokens > limits.max_tokens:
            raise over("max_tokens", max_tokens, "tokens", limits.max_tokens, "--max-tokens")
        for i, p in enumerate(prompts):
            if len(p) > limits.max_chars:
                param = "prompt" if len(prompts) == 1 else f"prompt.{i}"
                raise over(param, len(p), "characters", limits.max_chars, "--max-chars")
        stop = options.pop("stop")
        stop = [stop] if isinstance(stop, str) else list(stop or [])
        chars = sum(len(x) for x in stop)
        if chars > limits.max_stop_chars:
            raise over("stop", chars, "characters", limits.max_stop_chars, "--max-stop-chars")
        return GenerateConfig(max_tokens=max_tokens, stop=stop + list(also_stop), **options)

    def openai_sampling(
        req, prompts: list[str], max_tokens: int, stop, unsupported: dict, also_stop: tuple = ()
    ) -> tuple[int, GenerateConfig]:
        """``n`` and the sampling settings of an OpenAI-style request (completions or chat), after refusing the
        fields lstm-text cannot honour (``unsupported``: field -> whether the request gives it)."""
        unsupported |= {
            "presence_penalty": bool(req.presence_penalty),
            "frequency_penalty": bool(req.frequency_penalty),
            "logit_bias": bool(req.logit_bias),
        }
        for field, given in unsupported.items():
            if given:
                raise ApiError(422, f"{field} is not supported by lstm-text models", field, "unsupported")
        n = 1 if req.n is None else req.n
        if n < 1:
            raise ApiError(422, "n must be at least 1", "n")
        if len(prompts) * n > limits.max_n:
            raise over("n", len(prompts) * n, "samples (prompts x n)", limits.max_n, "--max-n")
        temperature = 1.0 if req.temperature is None else req.temperature
        top_p = 1.0 if req.top_p is None else req.top_p
        if temperature < 0 or top_p < 0:
            raise ApiError(422, "temperature and top_p must be >= 0", "temperature" if temperature < 0 else "top_p")
        return n, sampling(
            prompts,
            max_tokens,
            temperature=temperature or 1.0,
            top_p=top_p or 1.0,
            greedy=temperature == 0 or top_p == 0,  # as OpenAI reads 0: always the most likely token
            top_k=req.top_k,
            min_p=req.min_p,
            repetition_penalty=req.repetition_penalty,
            stop=stop,
            also_stop=also_stop,
            seed=req.seed,
        )

    @app.post(
        "/v1/classify", summary="Label, score and probabilities of each text (the classify --format jsonl records)"
    )
    async def classify(req: ClassifyRequest):
        name, _ = pick(req.model, "classify")
        if len(req.texts) > limits.max_texts:
            raise over("texts", len(req.texts), "texts", limits.max_texts, "--max-texts")
        for i, t in enumerate(req.texts):
            if len(t) > limits.max_chars:
                raise over(f"texts.{i}", len(t), "characters", limits.max_chars, "--max-chars")
        if len(req.abstain_label) > limits.max_label:
            raise over("abstain_label", len(req.abstain_label), "characters", limits.max_label, "--max-label")
        if req.explain:
            # occlusion classifies each text once per word: bound what that costs by what plain classify may
            cost = sum((len(t.split()) + 1) * len(t) for t in req.texts)
            if cost > limits.max_chars * limits.max_texts:
                raise over(
                    "explain",
                    cost,
                    "characters to classify (each text once per word)",
                    limits.max_chars * limits.max_texts,
                    "--max-chars x --max-texts",
                )
        if not req.texts:
            return JSONResponse({"model": name, "results": []})
        results = await asyncio.wrap_future(batchers[name].submit(req.texts, req.threshold, req.abstain_label))
        if req.explain:
            m = models[name]
            weights = await asyncio.to_thread(lambda: [m.explain(t) for t in req.texts])
            results = [{**r, "explain": w} for r, w in zip(results, weights)]
        return JSONResponse({"model": name, "results": results})

    @app.post("/v1/generate", summary="Continue a prompt; stream=true sends the text as server-sent events")
    async def generate(req: GenerateRequest, request: Request):
        name, m = pick(req.model, "generate")
        options = req.model_dump(exclude={"model", "prompt", "max_tokens", "stream"})
        cfg = sampling([req.prompt], req.max_tokens, **options)
        job = pool.submit(name, m, [req.prompt], cfg, 1, req.stream)
        if not req.stream:
            text = (await collect(job, request, 1))[0]
            body = {"model": name, "text": text, "finish_reason": job.outcome.finish[0], "usage": usage(job)}
            return JSONResponse(body)  # not a dict: FastAPI's encoder walks it, on the loop the engine shares

        async def events():
            async for items in job.batches():
                yield sse({"text": "".join(piece for _, piece in items)}, "text")
            error = failure_event(job, "error")
            yield error or sse({"model": name, "finish_reason": job.outcome.finish[0], "usage": usage(job)}, "done")

        return EventStream(events(), job)

    @app.post("/v1/completions", summary="OpenAI-compatible text completions (the legacy completions API)")
    async def completions(req: CompletionRequest, request: Request):
        name, m = pick(req.model, "generate")
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ApiError(
                422, "prompt must be a string or a non-empty list of strings (token ids are not read)", "prompt"
            )
        unsupported = {
            "logprobs": req.logprobs is not None,
            "suffix": req.suffix is not None,
            "best_of": req.best_of not in (None, req.n or 1),
        }
        n, cfg = openai_sampling(req, prompts, 16 if req.max_tokens is None else req.max_tokens, req.stop, unsupported)
        job = pool.submit(name, m, prompts, cfg, n, bool(req.stream))
        head = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
        }

        def choice(i: int, text: str, finish: str | None) -> dict:
            return {"text": text, "index": i, "logprobs": None, "finish_reason": finish}

        if not req.stream:
            texts = await collect(job, request, len(prompts) * n)
            echo = [prompts[i // n] if req.echo else "" for i in range(len(texts))]
            choices = [choice(i, e + t, f) for i, (e, t, f) in enumerate(zip(echo, texts, job.outcome.finish))]
            return JSONResponse({**head, "choices": choices, "usage": usage(job)})

        async def chunks():
            if req.echo:
                for i in range(len(prompts) * n):
                    yield sse({**head, "choices": [choice(i, prompts[i // n], None)]})
            async for texts in job.texts():
                for i, text in texts.items():
                    yield sse({**head, "choices": [choice(i, text, None)]})
            if error := failure_event(job):
                yield error
                return
            for i, finish in enumerate(job.outcome.finish):
                yield sse({**head, "choices": [choice(i, "", finish)]})
            if req.stream_options and req.stream_options.include_usage:
                yield sse({**head, "choices": [], "usage": usage(job)})
            yield sse("[DONE]")

        return EventStream(chunks(), job)

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat: the conversation as a transcript, continued")
    async def chat_completions(req: ChatRequest, request: Request):
        name, m = pick(req.model, "generate")
        turns = []
        for i, msg in enumerate(req.messages):
            role = "system" if msg.role == "developer" else msg.role
            if role not in ("system", "user", "assistant"):
                raise ApiError(
                    422,
                    f"messages.{i}.role: {msg.role!r} messages are not supported (system, user, assistant)",
                    f"messages.{i}.role",
                    "unsupported",
                )
            content = msg.content
            if isinstance(content, list):  # parts: only text ones
                if any(p.get("type") != "text" or not isinstance(p.get("text"), str) for p in content):
                    raise ApiError(
                        422,
                        f"messages.{i}.content: only text parts are supported",
                        f"messages.{i}.content",
                        "unsupported",
                    )
                content = "".join(p["text"] for p in content)
            turns.append((role, content or ""))
        if not turns:
            raise ApiError(422, "messages must hold at least one message", "messages")
        prompt = chat.render(turns)
        if len(prompt) > limits.max_chars:
            raise over("messages", len(prompt), "characters of transcript", limits.max_chars, "--max-chars")
        unsupported = {
            "tools": bool(req.tools),
            "tool_choice": req.tool_choice not in (None, "none"),
            "functions": bool(req.functions),
            "function_call": req.function_call not in (None, "none"),
            "response_format": req.response_format not in (None, {"type": "text"}),
            "logprobs": bool(req.logprobs),
            "top_logprobs": req.top_logprobs is not None,
        }
        given = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        max_tokens = min(256, limits.max_tokens) if given is None else given
        n, cfg = openai_sampling(req, [prompt], max_tokens, req.stop, unsupported, tuple(chat.stop))
        job = pool.submit(name, m, [prompt], cfg, n, bool(req.stream))
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
        }

        if not req.stream:
            texts = await collect(job, request, n)
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text.lstrip(" ")},
                    "logprobs": None,
                    "finish_reason": finish,
                }
                for i, (text, finish) in enumerate(zip(texts, job.outcome.finish))
            ]
            return JSONResponse({**head, "choices": choices, "usage": usage(job)})

        head["object"] = "chat.completion.chunk"

        def chunk(i: int, delta: dict, finish: str | None) -> str:
            return sse({**head, "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}]})

        async def chunks():
            started = [False] * n  # the transcript puts a space after "Assistant:"; a reply does not start with it
            for i in range(n):
                yield chunk(i, {"role": "assistant", "content": ""}, None)
            async for texts in job.texts():
                for i, text in texts.items():
                    if not started[i]:
                        text = text.lstrip(" ")
                        started[i] = bool(text)
                    if text:
                        yield chunk(i, {"content": text}, None)
            if error := failure_event(job):
                yield error
                return
            for i, finish in enumerate(job.outcome.finish):
                yield chunk(i, {}, finish)
            if req.stream_options and req.stream_options.include_usage:
                yield sse({**head, "choices": [], "usage": usage(job)})
            yield sse("[DONE]")

        return EventStream(chunks(), job)

    def card(name: str) -> dict:
        m = models[name]
        info = m.info()
        return {
            "id": name,
            "object": "model",
            "created": started,
            "owned_by": "lstm-text",
            "capabilities": {"generate": m.has_lm, "classify": bool(m.labels)},
            "labels": m.labels,
            "parameters": info["parameters"],
            "tokenizer": info["tokenizer"],
            "vocab_size": info["vocab_size"],
        }

    @app.get("/v1/models", summary="The models served here, by name (OpenAI's model list, with lstm-text fields)")
    async def list_models():
        return {"object": "list", "data": [card(name) for name in models]}

    @app.get("/v1/models/{name}", summary="One served model")
    async def get_model(name: str):
        if name not in models:
            raise not_served(name)
        return card(name)

    @app.get("/", include_in_schema=False)
    async def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="lstm-text API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    import swagger_ui_bundle  # the serve extra's: Swagger UI's files, so /docs works without the internet

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/healthz", summary="Liveness: 200 while the server answers")
    async def healthz():
        return {"status": "ok", "models": list(models)}

    @app.get("/metrics", summary="Prometheus metrics: requests, latency, tokens, batches, queues, memory")
    async def prometheus():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app

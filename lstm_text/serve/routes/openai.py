"""OpenAI-compatible generation: POST /v1/completions (the legacy completions API) and /v1/chat/completions (the
conversation written as a transcript by the chat template, then continued), whole or streamed as OpenAI streams."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from ...config import GenerateConfig
from ..limits import ApiError
from ..schemas import ChatRequest, CompletionRequest
from ..state import Server, ServerState
from ..web import EventStream, collect, failure_event, over, sse, usage

router = APIRouter()


def openai_sampling(
    server: ServerState, req, prompts: list[str], max_tokens: int, stop, unsupported: dict, also_stop: tuple = ()
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
    if len(prompts) * n > server.limits.max_n:
        raise over("n", len(prompts) * n, "samples (prompts x n)", server.limits.max_n, "--max-n")
    temperature = 1.0 if req.temperature is None else req.temperature
    top_p = 1.0 if req.top_p is None else req.top_p
    if temperature < 0 or top_p < 0:
        raise ApiError(422, "temperature and top_p must be >= 0", "temperature" if temperature < 0 else "top_p")
    return n, server.sampling(
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


@router.post("/v1/completions", summary="OpenAI-compatible text completions (the legacy completions API)")
async def completions(req: CompletionRequest, request: Request, server: Server):
    name, m = server.pick(req.model, "generate")
    given = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    prompts = [p for p in given if isinstance(p, str)]
    if not prompts or len(prompts) < len(given):
        raise ApiError(422, "prompt must be a string or a non-empty list of strings (token ids are not read)", "prompt")
    unsupported = {
        "logprobs": req.logprobs is not None,
        "suffix": req.suffix is not None,
        "best_of": req.best_of not in (None, req.n or 1),
    }
    max_tokens = 16 if req.max_tokens is None else req.max_tokens
    n, cfg = openai_sampling(server, req, prompts, max_tokens, req.stop, unsupported)
    job = server.pool.submit(name, m, prompts, cfg, n, bool(req.stream))
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


def _turns(req: ChatRequest) -> list[tuple[str, str]]:
    """The conversation as (role, text) turns: developer messages are system messages; text parts only."""
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
    return turns


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat: the conversation as a transcript, continued")
async def chat_completions(req: ChatRequest, request: Request, server: Server):
    name, m = server.pick(req.model, "generate")
    limits, chat = server.limits, server.chat
    prompt = chat.render(_turns(req))
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
    n, cfg = openai_sampling(server, req, [prompt], max_tokens, req.stop, unsupported, tuple(chat.stop))
    job = server.pool.submit(name, m, [prompt], cfg, n, bool(req.stream))
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

"""POST /v1/generate: continue a prompt, whole or streamed as server-sent events (``generation``'s pool)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from ..schemas import GenerateRequest
from ..state import Server
from ..web import EventStream, collect, failure_event, sse, usage

router = APIRouter()


@router.post("/v1/generate", summary="Continue a prompt; stream=true sends the text as server-sent events")
async def generate(req: GenerateRequest, request: Request, server: Server):
    name, m = server.pick(req.model, "generate")
    options = req.model_dump(exclude={"model", "prompt", "max_tokens", "stream"})
    cfg = server.sampling([req.prompt], req.max_tokens, **options)
    job = server.pool.submit(name, m, [req.prompt], cfg, 1, req.stream)
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

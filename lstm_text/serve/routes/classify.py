"""POST /v1/classify: label, score and probabilities of each text, micro-batched (``batcher``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.responses import JSONResponse

from ..schemas import ClassifyRequest
from ..state import Server
from ..web import over

router = APIRouter()


@router.post(
    "/v1/classify", summary="Label, score and probabilities of each text (the classify --format jsonl records)"
)
async def classify(req: ClassifyRequest, server: Server):
    name, _ = server.pick(req.model, "classify")
    limits = server.limits
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
    results = await asyncio.wrap_future(server.batchers[name].submit(req.texts, req.threshold, req.abstain_label))
    if req.explain:
        m = server.models[name]
        weights = await asyncio.to_thread(
            lambda: [m.explain(t) if r["label"] is not None else [] for t, r in zip(req.texts, results)]
        )
        results = [{**r, "explain": w} for r, w in zip(results, weights)]
    return JSONResponse({"model": name, "results": results})

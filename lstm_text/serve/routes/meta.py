"""What the server tells about itself: the page at /, /v1/models, /healthz, /metrics and /docs (Swagger UI from
the installed swagger-ui-bundle, so it works offline)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from ..state import Server, ServerState

PAGE = Path(__file__).parents[1] / "page.html"  # GET /: one self-contained page to try the models

router = APIRouter()


def card(server: ServerState, name: str) -> dict:
    m = server.models[name]
    info = m.info()
    return {
        "id": name,
        "object": "model",
        "created": server.started,
        "owned_by": "lstm-text",
        "capabilities": {"generate": m.has_lm, "classify": bool(m.labels)},
        "labels": m.labels,
        "parameters": info["parameters"],
        "tokenizer": info["tokenizer"],
        "vocab_size": info["vocab_size"],
    }


@router.get("/v1/models", summary="The models served here, by name (OpenAI's model list, with lstm-text fields)")
async def list_models(server: Server):
    return {"object": "list", "data": [card(server, name) for name in server.models]}


@router.get("/v1/models/{name}", summary="One served model")
async def get_model(name: str, server: Server):
    if name not in server.models:
        raise server.not_served(name)
    return card(server, name)


@router.get("/", include_in_schema=False)
async def page():
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@router.get("/docs", include_in_schema=False)
async def docs():
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="lstm-text API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
    )


def mount_docs_assets(app: FastAPI) -> None:
    """/docs/assets: Swagger UI's files from the serve extra's swagger-ui-bundle (no CDN)."""
    import swagger_ui_bundle

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")


@router.get("/healthz", summary="Liveness: 200 while the server answers")
async def healthz(server: Server):
    return {"status": "ok", "models": list(server.models)}


@router.get("/metrics", summary="Prometheus metrics: requests, latency, tokens, batches, queues, memory")
async def prometheus(server: Server):
    return Response(server.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

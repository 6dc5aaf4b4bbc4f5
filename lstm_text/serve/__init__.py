"""``lstm-text serve``: loaded models behind a local HTTP API (FastAPI + uvicorn, the ``serve`` extra).

``limits`` (the server's bounds, stdlib only), ``batcher`` (classify micro-batching), ``generation`` (generation
jobs, continuously batched: one stepping thread per language model), ``chat`` (the chat template: messages as a
transcript), ``metrics`` (Prometheus text), ``schemas`` (request bodies), ``web`` (error bodies, the
auth/body-limit/metrics gate, server-sent events), ``state`` (what the routes share: models, limits, batchers,
the generation pool), ``routes`` (one router per area: classify, generate, openai, meta: the page at / from
``page.html``, /docs from swagger-ui-bundle), ``app`` (the FastAPI app: the state, the error handlers, the
routers), ``connections`` (the connection cap and request deadline below the app) and ``server`` (loading models
by name, running uvicorn). Only ``limits`` and ``chat`` are safe to import without the extra.
"""

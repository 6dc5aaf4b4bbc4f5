"""``lstm-text serve``: loaded models behind a local HTTP API (FastAPI + uvicorn, the ``serve`` extra).

``limits`` (the server's bounds, stdlib only), ``batcher`` (classify micro-batching), ``generation`` (generation
jobs, continuously batched: one stepping thread per language model), ``chat`` (the chat template: messages as a
transcript), ``metrics`` (Prometheus text), ``schemas`` (request bodies), ``web`` (error bodies, the
auth/body-limit/metrics gate, server-sent events), ``app`` (the FastAPI app and its routes, the page at / from
``page.html``, /docs from swagger-ui-bundle) and ``server`` (loading models by name, running uvicorn). Only
``limits`` and ``chat`` are safe to import without the extra.
"""

"""``lstm-text serve``: loaded models behind a local HTTP API (FastAPI + uvicorn, the ``serve`` extra).

``limits`` (the server's bounds, stdlib only), ``batcher`` (classify micro-batching), ``generation`` (generation
jobs on worker threads), ``metrics`` (Prometheus text), ``schemas`` (request bodies), ``web`` (error bodies, the
auth/body-limit/metrics gate, server-sent events), ``app`` (the FastAPI app and its routes) and ``server``
(loading models by name, running uvicorn). Only ``limits`` is safe to import without the extra.
"""

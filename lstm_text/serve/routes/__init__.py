"""The HTTP routes, one ``APIRouter`` per area (FastAPI's "Bigger Applications" layout): ``classify``
(/v1/classify), ``generate`` (/v1/generate), ``openai`` (/v1/completions, /v1/chat/completions) and ``meta``
(/, /v1/models, /healthz, /metrics, /docs). Each reaches the shared ``state.ServerState`` as a dependency."""

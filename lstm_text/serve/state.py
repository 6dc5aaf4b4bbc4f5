"""What the routers share: the served models, the server's limits, the chat template, the metrics, one
``ClassifyBatcher`` per classifier and the ``GenerationPool``; made once by ``app.create_app``, kept in
``app.state.server`` and reached by a route through the ``Server`` dependency."""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated

from fastapi import Depends, Request

from ..config import GenerateConfig
from .batcher import ClassifyBatcher
from .chat import ChatTemplate
from .generation import GenerationPool
from .limits import ApiError, Limits
from .metrics import Metrics
from .web import over


class ServerState:
    """The served models ({name: ``api.Model``}) and the machinery that answers for them."""

    def __init__(self, models: dict, limits: Limits, chat: ChatTemplate):
        self.models, self.limits, self.chat = models, limits, chat
        self.metrics = Metrics()
        self.open_requests: Counter = Counter()  # requests received and not answered, by endpoint (the Gate's)
        self.batchers: dict[str, ClassifyBatcher] = {}
        self.batchers = {
            name: ClassifyBatcher(
                name,
                m,
                max_queue=limits.max_queue,
                max_batch=limits.max_batch,
                wait_s=limits.batch_wait_ms / 1000,
                metrics=self.metrics,
                arriving=self.arriving,
            )
            for name, m in models.items()
            if m.labels
        }
        self.pool = GenerationPool(limits, self.metrics)
        self.started = int(time.time())

    def arriving(self) -> int:
        """Classify requests received and not yet queued (read by the batchers' threads)."""
        return self.open_requests["/v1/classify"] - sum(b.unanswered for b in self.batchers.values())

    def close(self) -> None:
        self.pool.close()
        for b in self.batchers.values():
            b.close()

    def not_served(self, name: str) -> ApiError:
        return ApiError(
            404, f"model {name!r} is not served here (served: {', '.join(self.models)})", "model", "model_not_found"
        )

    def pick(self, name: str | None, task: str):
        """(name, model) of the model a request names, or of the first that can do ``task`` (classify,
        generate)."""
        models = self.models
        can = (lambda m: bool(m.labels)) if task == "classify" else (lambda m: m.has_lm)
        if name is None:
            found = next(((n, m) for n, m in models.items() if can(m)), None)
            if found is None:
                raise ApiError(422, f"no model served here can {task} (served: {', '.join(models)})", "model")
            return found
        if name not in models:
            raise self.not_served(name)
        if not can(models[name]):
            why = "it has no classification head" if task == "classify" else "it has no language-model head"
            raise ApiError(422, f"model {name!r} cannot {task}: {why}", "model")
        return name, models[name]

    def sampling(self, prompts: list[str], max_tokens: int, also_stop: tuple = (), **options) -> GenerateConfig:
        """The request's sampling settings after checking the server's limits; ``also_stop``: the server's own
        stop strings (a chat template's turn markers), not counted against ``--max-stop-chars``."""
        limits = self.limits
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


async def server_state(request: Request) -> ServerState:
    """The app's ``ServerState`` (async: a dependency FastAPI would otherwise run on a worker thread)."""
    return request.app.state.server


Server = Annotated[ServerState, Depends(server_state)]  # a route's parameter: ``server: Server``

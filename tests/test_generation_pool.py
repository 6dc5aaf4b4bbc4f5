"""The generation pool in-process (no HTTP): jobs stepped as one batch reach the event loop through one outbox."""

from __future__ import annotations

import asyncio

import pytest

import lstm_text
from lstm_text.config import GenerateConfig
from lstm_text.serve.generation import GenerationPool
from lstm_text.serve.limits import Limits
from lstm_text.serve.metrics import Metrics


@pytest.fixture(scope="module")
def model(tiny_run):
    return lstm_text.load(tiny_run)


@pytest.mark.parametrize("hold", [None, 1.0])
def test_outbox_delivers_every_piece_in_order_with_one_wake_up_per_step(model, hold, monkeypatch):
    """Streamed and whole jobs of one model, stepped together: each gets all its text, in order, the same as
    ``Model.generate`` alone; the loop is woken at most once per engine step, whatever the number of jobs. With
    output held for long (``hold`` seconds), once per job's first text and once at the end."""
    from lstm_text.serve import generation

    if hold:
        monkeypatch.setattr(generation, "EVENT_SECONDS", hold)
        monkeypatch.setattr(generation, "MAX_HOLD", hold)
    settings = [
        dict(max_tokens=60, seed=1, temperature=0.9),
        dict(max_tokens=40, seed=2, top_k=5),
        dict(max_tokens=80, greedy=True),
        dict(max_tokens=70, seed=3, top_p=0.8, stop=["e "]),
        dict(max_tokens=50, seed=4, min_p=0.1, repetition_penalty=1.2),
    ]
    prompts = ["the", "and the", "a", "so", "the king"]

    async def run():
        loop = asyncio.get_running_loop()
        wake_ups = [0]
        plain = loop.call_soon_threadsafe

        def counted(*args, **kwargs):
            wake_ups[0] += 1
            return plain(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        metrics = Metrics()
        pool = GenerationPool(Limits(), metrics)
        jobs = [
            pool.submit("lm", model, [p], GenerateConfig(**s), 1, stream=k % 2 == 0)
            for k, (p, s) in enumerate(zip(prompts, settings))
        ]

        async def read(job):
            pieces, reads = [], 0
            async for items in job.batches():
                reads += 1
                assert all(choice == 0 for choice, _ in items)
                pieces += [piece for _, piece in items]
            return "".join(pieces), reads

        got = await asyncio.gather(*(read(j) for j in jobs))
        await asyncio.to_thread(pool.close)
        steps = metrics._hists["lstm_text_generation_batch_rows"][(("model", "lm"),)][2]
        return jobs, got, wake_ups[0], steps

    jobs, got, wake_ups, steps = asyncio.run(run())
    for job, (text, reads), p, s in zip(jobs, got, prompts, settings):
        assert text == model.generate(p, **s)
        assert job.outcome.finish[0] in ("stop", "length") and job.outcome.error is None
        if not job.stream:
            assert reads == 1  # held by the engine, handed over with END
    assert wake_ups <= steps + 1  # one wake-up per step at most (the +1: asyncio.to_thread's)
    if hold:
        assert wake_ups <= 3 + 3  # the 3 streamed jobs' first texts, the ENDs as rows ran out, to_thread's
    assert steps >= 80  # the greedy job's 80 tokens, so many pieces went through few wake-ups


def test_a_closed_loop_cancels_its_jobs(model):
    """A job whose event loop is gone (the server stopped) is cancelled instead of stepped to its end."""
    pool = GenerationPool(Limits(), Metrics())

    async def submit():
        return pool.submit("lm", model, ["the"], GenerateConfig(max_tokens=1000, seed=1), 1)

    job = asyncio.run(submit())  # asyncio.run closes the loop on return
    pool.close()
    assert job.cancel.is_set() and job.outcome.cancelled

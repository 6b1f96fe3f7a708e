"""interact.app._every: the periodic jobs stop when cancelled, even when a job swallows the
cancellation (a client library catching CancelledError mid-command): otherwise the
server's shutdown waits on that task for ever (seen with the Redis Cluster client)."""

from __future__ import annotations

import asyncio

from interact.app import _every


async def test_a_job_that_swallows_the_cancel_still_stops_the_loop() -> None:
    started = asyncio.Event()
    rounds = 0

    async def job() -> None:
        nonlocal rounds
        rounds += 1
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # what the loop must survive

    task = asyncio.create_task(_every(job, 0))
    await started.wait()
    task.cancel()
    # Not wait_for: it would cancel the task again and wait on it, for ever if it loops.
    await asyncio.wait({task}, timeout=2)
    assert task.cancelled() and rounds == 1


async def test_a_failing_job_is_retried_and_a_cancel_between_rounds_stops_it() -> None:
    calls = 0
    third = asyncio.Event()

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()
        raise RuntimeError("Redis away")

    task = asyncio.create_task(_every(job, 0))
    await third.wait()
    task.cancel()
    await asyncio.wait({task}, timeout=2)
    assert task.cancelled() and calls >= 3

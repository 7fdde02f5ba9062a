"""Counting the Prefect API requests of this process (tests and benchmarks B9)."""

from __future__ import annotations

import collections
from collections.abc import Callable


def count_prefect_requests() -> tuple[collections.Counter, Callable[[], None]]:
    """Count every request Prefect's sync and async HTTP clients send from now on, as ``"METHOD /path"`` → n.
    Returns the counter and the function that stops counting."""
    from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

    seen: collections.Counter = collections.Counter()
    sync_send, async_send = PrefectHttpxSyncClient.send, PrefectHttpxAsyncClient.send

    def counted_sync(self, request, *args, **kwargs):
        seen[f"{request.method} {request.url.path}"] += 1
        return sync_send(self, request, *args, **kwargs)

    async def counted_async(self, request, *args, **kwargs):
        seen[f"{request.method} {request.url.path}"] += 1
        return await async_send(self, request, *args, **kwargs)

    PrefectHttpxSyncClient.send, PrefectHttpxAsyncClient.send = counted_sync, counted_async

    def stop() -> None:
        PrefectHttpxSyncClient.send, PrefectHttpxAsyncClient.send = sync_send, async_send

    return seen, stop

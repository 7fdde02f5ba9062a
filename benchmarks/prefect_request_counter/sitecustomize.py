"""Bench-only: count the Prefect API requests of this process (B4, B8). Put this folder on ``PYTHONPATH`` with
``TASKBUILDER_COUNT_PREFECT_REQUESTS=<file>``: every request sent by Prefect's sync and async HTTP clients is
counted by ``"METHOD /path-with-ids-replaced"``, and the counts are appended to the file as one JSON line at exit
(``{pid, argv: the first two, flow_run_id: PREFECT__FLOW_RUN_ID or null, requests}``)
(after Prefect's exit drains, which send logs and events: at exit, or in ``os._exit`` once the CLI drained them). Not imported by the project."""

import atexit
import collections
import json
import os
import re

_OUT = os.environ.get("TASKBUILDER_COUNT_PREFECT_REQUESTS")
if _OUT:
    _seen: collections.Counter = collections.Counter()
    _UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

    def _key(request) -> str:
        return f"{request.method} {_UUID.sub('{id}', request.url.path)}"

    def _patch() -> None:
        from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

        sync_send, async_send = PrefectHttpxSyncClient.send, PrefectHttpxAsyncClient.send

        def counted_sync(self, request, *args, **kwargs):
            _seen[_key(request)] += 1
            return sync_send(self, request, *args, **kwargs)

        async def counted_async(self, request, *args, **kwargs):
            _seen[_key(request)] += 1
            return await async_send(self, request, *args, **kwargs)

        PrefectHttpxSyncClient.send, PrefectHttpxAsyncClient.send = counted_sync, counted_async

    import importlib.abc
    import sys

    class _AfterPrefectClient(importlib.abc.MetaPathFinder):
        """Patch once ``prefect.client.base`` is imported (not before: importing Prefect here would slow every start)."""

        def find_spec(self, name, path=None, target=None):
            if name == "prefect.client.base":
                sys.meta_path.remove(self)
                spec = importlib.util.find_spec(name)
                loader = spec.loader
                original = loader.exec_module

                def exec_module(module):
                    original(module)
                    _patch()

                loader.exec_module = exec_module
                return spec
            return None

    import importlib.util

    sys.meta_path.insert(0, _AfterPrefectClient())

    _written: list[bool] = []

    def _cpu_seconds() -> float:
        """User + system CPU of this process so far (its threads included)."""
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        return round(usage.ru_utime + usage.ru_stime, 3)

    def _write() -> None:
        if not _written:
            _written.append(True)
            with open(_OUT, "a") as out:
                out.write(json.dumps({"pid": os.getpid(), "argv": sys.argv[:2], "flow_run_id": os.environ.get("PREFECT__FLOW_RUN_ID"),
                                      "requests": dict(_seen), "cpu_seconds": _cpu_seconds()}) + "\n")

    atexit.register(_write)
    _os_exit = os._exit

    def _exit_after_writing(code: int) -> None:
        """The CLI ends with ``os._exit`` once Prefect's drains are done (``flows.cli_support.exit_now``): write first."""
        _write()
        _os_exit(code)

    os._exit = _exit_after_writing

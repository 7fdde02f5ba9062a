"""Count the Prefect API requests of this process (benchmarks B4, B8; the PostgreSQL scale test counts the
rate-limit slots granted). Put this folder on ``PYTHONPATH`` with
``TASKBUILDER_COUNT_PREFECT_REQUESTS=<file>``: every request sent by Prefect's sync and async HTTP clients is
counted by ``"METHOD /path-with-ids-replaced"``, and the counts are appended to the file as one JSON line at exit
(``{pid, argv: the first two, flow_run_id: PREFECT__FLOW_RUN_ID or null, requests, answered_2xx, cpu_seconds}``;
``answered_2xx``: the requests whose answer was a success)
(after Prefect's exit drains, which send logs and events: at exit, or in ``os._exit`` once the CLI drained them). Not imported by the project."""

import atexit
import collections
import json
import os
import re

_OUT = os.environ.get("TASKBUILDER_COUNT_PREFECT_REQUESTS")
if _OUT:
    _seen: collections.Counter = collections.Counter()
    _granted: collections.Counter = collections.Counter()  # "METHOD /path" → requests answered 2xx
    _UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

    def _key(request) -> str:
        return f"{request.method} {_UUID.sub('{id}', request.url.path)}"

    def _patch() -> None:
        from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

        sync_send, async_send = PrefectHttpxSyncClient.send, PrefectHttpxAsyncClient.send

        def counted_sync(self, request, *args, **kwargs):
            _seen[_key(request)] += 1
            response = sync_send(self, request, *args, **kwargs)  # raises on 4xx/5xx: not granted
            _granted[_key(request)] += 1
            return response

        async def counted_async(self, request, *args, **kwargs):
            _seen[_key(request)] += 1
            response = await async_send(self, request, *args, **kwargs)
            _granted[_key(request)] += 1
            return response

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
                                      "requests": dict(_seen), "answered_2xx": dict(_granted), "cpu_seconds": _cpu_seconds()}) + "\n")

    atexit.register(_write)
    _os_exit = os._exit

    def _exit_after_writing(code: int) -> None:
        """The CLI ends with ``os._exit`` once Prefect's drains are done (``tasks.process_exit.exit_now``: the CLI and a worker's flow run): write first."""
        _write()
        _os_exit(code)

    os._exit = _exit_after_writing

"""``python -m sandbox --host 127.0.0.1 --port PORT [--token T] [--state FILE.sqlite] [--settings FILE.json]``

Starts the local Prolific API (and its own object store), prints one line
``Sandbox API at http://HOST:PORT`` and serves until SIGINT/SIGTERM. The token defaults to
``$SANDBOX_API_TOKEN`` or ``sandbox-token`` (for local use only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

import pydantic

from sandbox.app import Sandbox
from sandbox.server import SandboxServer
from sandbox.settings import Settings
from sandbox.store import MemoryStore, SqliteStore

DEFAULT_TOKEN = "sandbox-token"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local Prolific API sandbox.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--token", default=None,
                        help=f"API token to accept (default: $SANDBOX_API_TOKEN, else {DEFAULT_TOKEN!r})")
    parser.add_argument("--state", type=Path, default=None,
                        help="SQLite file keeping state across restarts; objects go to FILE.objects/ beside it")
    parser.add_argument("--settings", type=Path, default=None, help="JSON file of settings (see README.md)")
    return parser.parse_args(argv)


def _settings(path: Path | None) -> Settings:
    if path is None:
        return Settings()
    try:
        return Settings.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, pydantic.ValidationError) as exc:
        sys.exit(f"sandbox: cannot use settings file {path}: {exc}")


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox until interrupted."""
    args = _arguments(argv)
    settings = _settings(args.settings)
    token = args.token or os.environ.get("SANDBOX_API_TOKEN") or DEFAULT_TOKEN
    temporary = None
    if args.state is not None:
        store = SqliteStore(args.state)
        objects_dir = args.state.with_name(args.state.name + ".objects")
    else:
        store = MemoryStore()
        temporary = tempfile.mkdtemp(prefix="sandbox-objects-")
        objects_dir = Path(temporary) / "objects"
    sandbox = Sandbox(settings, store, token, objects_dir)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = None
    try:
        sandbox.start()
        server = SandboxServer((args.host, args.port), sandbox)
        threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True).start()
        host, port = server.server_address[:2]
        print(f"Sandbox API at http://{host}:{port}", flush=True)
        stop.wait()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        sandbox.stop()
        if isinstance(store, SqliteStore):
            store.close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    main()

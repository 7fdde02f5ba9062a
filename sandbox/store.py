"""The sandbox's state store: resources as JSON-able dicts, by kind and id.

One interface, two back ends: ``MemoryStore`` (the default) and ``SqliteStore`` (``--state FILE.sqlite``),
which keeps everything in memory too and writes each change through to SQLite, so a restarted
sandbox finds its datasets, batches, studies and submissions again.
Callers serialise access with the sandbox lock; the store itself is not a transaction manager.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

# (kind, field) pairs kept in an index, for the frequent "submissions of a study" look-up.
_INDEXED = {("submission", "study_id")}


class MemoryStore:
    """Resources kept in memory: ``put``/``get``/``list``/``delete``/``clear``.

    Objects are plain dicts with an ``"id"`` key; ``get`` returns the stored dict itself, and a
    changed dict must be ``put`` again (that is what persists it in ``SqliteStore``).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._kinds: dict[str, dict[str, dict]] = {}
        self._index: dict[tuple[str, str, str], dict[str, None]] = {}

    def put(self, kind: str, obj: dict) -> dict:
        """Insert or replace ``obj`` (keyed by ``obj["id"]``); returns it."""
        with self._lock:
            self._kinds.setdefault(kind, {})[obj["id"]] = obj
            for index_kind, field in _INDEXED:
                if index_kind == kind and obj.get(field) is not None:
                    self._index.setdefault((kind, field, obj[field]), {})[obj["id"]] = None
        return obj

    def get(self, kind: str, obj_id: str) -> dict | None:
        """The object of ``kind`` with ``obj_id``, or None."""
        with self._lock:
            return self._kinds.get(kind, {}).get(obj_id)

    def list(self, kind: str, **equal: object) -> list[dict]:
        """Objects of ``kind`` in insertion order whose fields equal the given values."""
        with self._lock:
            objects = self._kinds.get(kind, {})
            candidates = objects.values()
            for field, value in equal.items():
                if (kind, field) in _INDEXED:
                    candidates = [objects[i] for i in self._index.get((kind, field, value), {})]
                    break
            return [o for o in candidates if all(o.get(k) == v for k, v in equal.items())]

    def delete(self, kind: str, obj_id: str) -> None:
        """Remove one object (no error when absent)."""
        with self._lock:
            obj = self._kinds.get(kind, {}).pop(obj_id, None)
            for index_kind, field in _INDEXED:
                if obj is not None and index_kind == kind and obj.get(field) is not None:
                    self._index.get((kind, field, obj[field]), {}).pop(obj_id, None)

    def clear(self) -> None:
        """Remove every object of every kind."""
        with self._lock:
            self._kinds.clear()
            self._index.clear()


class SqliteStore(MemoryStore):
    """A ``MemoryStore`` that writes every ``put``, ``delete`` and ``clear`` through to a SQLite file.

    Table ``resources(kind, id, body)``; the body is the object's JSON. Loaded fully at start.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS resources ("
                         "kind TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, "
                         "PRIMARY KEY (kind, id))")
        rows = self._db.execute("SELECT kind, body FROM resources ORDER BY seq").fetchall()
        self._seq = 0
        for kind, body in rows:
            super().put(kind, json.loads(body))
            self._seq += 1

    def put(self, kind: str, obj: dict) -> dict:
        with self._lock:
            super().put(kind, obj)
            self._seq += 1
            self._db.execute(
                "INSERT INTO resources (kind, id, seq, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                (kind, obj["id"], self._seq, json.dumps(obj)))
        return obj

    def delete(self, kind: str, obj_id: str) -> None:
        with self._lock:
            super().delete(kind, obj_id)
            self._db.execute("DELETE FROM resources WHERE kind = ? AND id = ?", (kind, obj_id))

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self._db.execute("DELETE FROM resources")

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

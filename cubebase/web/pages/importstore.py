"""Where an import waits between its steps and reports its progress.

An import is a file's rows (already read into text), the column mapping, the
uploader and the table, plus a small progress record that the background job
updates while it writes. Both live outside the database transaction that writes
the records, so the progress bar can be read while that transaction is open:

- with ``CUBEBASE_REDIS_URL``: two Redis keys per import,
  ``cubebase-<hash>:import:<id>`` (the state, zlib-compressed JSON) and
  ``...:progress`` (JSON), expiring after ``TTL`` (a day). The rq worker that
  runs the commit job reads the same keys;
- without Redis (``cubebase demo``, in-process jobs): a dictionary in the
  process, guarded by a lock, with the same expiry (one process serves the app
  and runs its jobs, as for the in-process workflow scheduler).

Ids are 128-bit random tokens, and every page checks that the import is the
signed-in user's, so an import cannot be seen or driven by anyone else.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import zlib
from typing import Any

TTL = 24 * 3600


def new_id() -> str:
    return secrets.token_urlsafe(16)


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, bytes]] = {}

    def _sweep(self, now: float) -> None:
        for k in [k for k, (at, _) in self._items.items() if now - at > TTL]:
            del self._items[k]

    def _put(self, key: str, value: Any) -> None:
        data = zlib.compress(json.dumps(value, default=str).encode())
        with self._lock:
            now = time.monotonic()
            self._sweep(now)
            self._items[key] = (now, data)

    def _get(self, key: str) -> Any:
        with self._lock:
            item = self._items.get(key)
        return None if item is None else json.loads(zlib.decompress(item[1]))

    def save(self, import_id: str, state: dict[str, Any]) -> None:
        self._put(import_id, state)

    def load(self, import_id: str) -> dict[str, Any] | None:
        return self._get(import_id)

    def set_progress(self, import_id: str, progress: dict[str, Any]) -> None:
        self._put(import_id + ":progress", progress)

    def progress(self, import_id: str) -> dict[str, Any] | None:
        return self._get(import_id + ":progress")

    def claim(self, import_id: str) -> bool:
        """Mark the import as started, once: False when it already was."""
        with self._lock:
            key = import_id + ":claimed"
            if key in self._items:
                return False
            self._items[key] = (time.monotonic(), b"")
            return True

    def reset(self, import_id: str) -> None:
        """Forget a failed commit, so the import can be fixed and committed again."""
        with self._lock:
            self._items.pop(import_id + ":progress", None)
            self._items.pop(import_id + ":claimed", None)


class RedisStore:
    def __init__(self, url: str, prefix: str) -> None:
        from redis import Redis

        self.redis = Redis.from_url(url)
        self.prefix = prefix

    def _key(self, import_id: str, part: str = "") -> str:
        return f"{self.prefix}:import:{import_id}{part}"

    def save(self, import_id: str, state: dict[str, Any]) -> None:
        data = zlib.compress(json.dumps(state, default=str).encode())
        self.redis.set(self._key(import_id), data, ex=TTL)

    def load(self, import_id: str) -> dict[str, Any] | None:
        data = self.redis.get(self._key(import_id))
        return None if data is None else json.loads(zlib.decompress(data))

    def set_progress(self, import_id: str, progress: dict[str, Any]) -> None:
        self.redis.set(self._key(import_id, ":progress"), json.dumps(progress), ex=TTL)

    def progress(self, import_id: str) -> dict[str, Any] | None:
        data = self.redis.get(self._key(import_id, ":progress"))
        return None if data is None else json.loads(data)

    def claim(self, import_id: str) -> bool:
        return bool(self.redis.set(self._key(import_id, ":claimed"), b"1", nx=True, ex=TTL))

    def reset(self, import_id: str) -> None:
        self.redis.delete(self._key(import_id, ":progress"), self._key(import_id, ":claimed"))


def store_of(platform) -> MemoryStore | RedisStore:
    """The platform's import store (made once per platform object)."""
    store = platform.__dict__.get("cb_import_store")
    if store is None:
        if platform.config.redis_url:
            from ...workflows.jobs import queue_name

            store = RedisStore(platform.config.redis_url, queue_name(platform.config.database_url))
        else:
            store = MemoryStore()
        platform.__dict__["cb_import_store"] = store
    return store

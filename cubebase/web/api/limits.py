"""Per-caller rate limits and the log of API token use.

Rate limits are fixed windows (``api_rate_limit`` requests per ``api_rate_window``
seconds) per token or session user. With ``CUBEBASE_REDIS_URL`` the counters live
in Redis (``INCR`` + ``EXPIRE``), so every gunicorn worker and host shares them;
without it each process counts for itself. When Redis cannot be reached the
request is let through and a warning logged: a limiter outage must not take
the API down with it.

Token use is counted per token and hour in ``cb_api_token_use``: each process
adds up its counts in memory and writes them every ``api_usage_flush_seconds``
with an upsert that adds to the stored counts (so many workers share a row),
and moves ``cb_api_tokens.last_used_at`` forward. A process that dies loses at
most that many seconds of counts; reads stay free of writes.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ...platform.models import ApiToken, ApiTokenUse

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window ends


class RateLimiter:
    """Fixed-window counters, in Redis when a URL is given, else in this process."""

    def __init__(self, limit: int, window: int, redis_url: str | None, namespace: str):
        self.limit = limit
        self.window = max(1, window)
        self.namespace = namespace
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}
        self._redis = None
        if redis_url and limit > 0:
            import redis

            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def hit(self, caller: str) -> Verdict:
        now = time.time()
        slot = int(now // self.window)
        reset = int((slot + 1) * self.window - now) + 1
        if self._redis is not None:
            count = self._hit_redis(caller, slot)
            if count is None:  # Redis unreachable: let the request through
                return Verdict(True, self.limit, self.limit, reset)
        else:
            count = self._hit_local(caller, slot)
        return Verdict(count <= self.limit, self.limit, max(0, self.limit - count), reset)

    def _hit_local(self, caller: str, slot: int) -> int:
        with self._lock:
            seen_slot, count = self._counts.get(caller, (slot, 0))
            count = count + 1 if seen_slot == slot else 1
            if len(self._counts) > 100_000:  # forget callers of past windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] == slot}
            self._counts[caller] = (slot, count)
            return count

    def _hit_redis(self, caller: str, slot: int) -> int | None:
        import redis

        key = f"cubebase:{self.namespace}:rate:{caller}:{slot}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, self.window + 5)
            count, _ = pipe.execute()
            return int(count)
        except redis.RedisError as exc:
            log.warning("rate limiter: Redis unavailable, request let through: %s", exc)
            return None


def namespace_for(database_url: str) -> str:
    """Keys of one installation in a Redis shared by several: from its database URL."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:12]


class UsageLog:
    """Token use counted in memory and added to ``cb_api_token_use`` now and then."""

    def __init__(self, platform, flush_seconds: float):
        self.platform = platform
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, datetime], dict] = {}
        self._last_flush = time.monotonic()
        atexit.register(self._flush_quietly)

    def record(self, token_id: int, user_id: int, *, write: bool, refused: bool, ip: str | None):
        now = datetime.now(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        with self._lock:
            row = self._pending.get((token_id, hour))
            if row is None:
                row = self._pending[(token_id, hour)] = {
                    "user_id": user_id,
                    "requests": 0,
                    "writes": 0,
                    "refused": 0,
                }
            row["requests"] += 1
            row["writes"] += int(write)
            row["refused"] += int(refused)
            row["last_at"] = now
            row["last_ip"] = (ip or "")[:64] or None
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self, *, quiet: bool = False) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return
        try:
            self._write(pending)
        except Exception as exc:  # noqa: BLE001 - counting must never fail a request
            if quiet:
                return  # at exit: the database may be gone (a test's), nothing left to tell
            log.warning("token use log: could not write %d counts, kept: %s", len(pending), exc)
            with self._lock:
                for key, row in pending.items():
                    mine = self._pending.get(key)
                    if mine is None:
                        self._pending[key] = row
                    else:
                        for n in ("requests", "writes", "refused"):
                            mine[n] += row[n]

    def _flush_quietly(self) -> None:
        url = self.platform.engine.url
        if url.get_backend_name() == "sqlite" and url.database and not os.path.exists(url.database):
            return  # the database file is gone (a test's or benchmark's): do not create it again
        self.flush(quiet=True)

    def _write(self, pending: dict) -> None:
        dialect = self.platform.dialect
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        t = ApiTokenUse.__table__
        with self.platform.session(write=True) as session, session.begin():
            for (token_id, hour), row in sorted(pending.items(), key=lambda kv: kv[0]):
                stmt = insert(t).values(token_id=token_id, hour=hour, **row)
                ex = stmt.excluded
                session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[t.c.token_id, t.c.hour],
                        set_={
                            "requests": t.c.requests + ex.requests,
                            "writes": t.c.writes + ex.writes,
                            "refused": t.c.refused + ex.refused,
                            "last_at": sa.case(
                                (ex.last_at > t.c.last_at, ex.last_at), else_=t.c.last_at
                            ),
                            "last_ip": ex.last_ip,
                        },
                    )
                )
                session.execute(
                    sa.update(ApiToken)
                    .where(
                        ApiToken.id == token_id,
                        sa.or_(
                            ApiToken.last_used_at.is_(None), ApiToken.last_used_at < row["last_at"]
                        ),
                    )
                    .values(last_used_at=row["last_at"])
                )

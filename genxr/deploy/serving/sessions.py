"""Per-session streaming state held by a model replica, bounded in count and idle time.

A world-model or avatar replica serves several sessions; each has its own streaming state
(KV cache, scene, rolling audio window). :class:`SessionStore` keeps them keyed by session
id, opens them with the parameters the session sent (``open``), evicts the least recently
used one when ``max_sessions`` is reached and any idle longer than ``idle_timeout_s``. A
request for a session the replica does not hold (never opened, evicted, or lost with a
restarted replica) raises :class:`UnknownSessionError`; the caller re-opens it with the
same parameters and retries, so a replica restart costs the session its state, not its run.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from genxr.platform.clock import MONOTONIC, NS_PER_S, Clock

State = TypeVar("State")


class UnknownSessionError(KeyError):
    """The replica holds no state for this session id."""

    def __init__(self, session_id: str, held: int) -> None:
        super().__init__(session_id)
        self.session_id = session_id
        self.held = held

    def __str__(self) -> str:
        return (f"unknown session id {self.session_id!r} (this replica holds {self.held} sessions); "
                "open it first - it may have been evicted or the replica restarted")

    def __reduce__(self):  # so Ray can ship it back to the caller intact
        return (UnknownSessionError, (self.session_id, self.held))


class SessionStore(Generic[State]):
    """Session id -> state, LRU with a count limit and an idle timeout (see module docstring)."""

    def __init__(self, factory: Callable[[dict[str, Any]], State], *, max_sessions: int = 8,
                 idle_timeout_s: float = 300.0, clock: Clock = MONOTONIC) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        if idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s must be > 0, got {idle_timeout_s}")
        self.factory = factory
        self.max_sessions = max_sessions
        self.idle_timeout_ns = int(idle_timeout_s * NS_PER_S)
        self.clock = clock
        self.evicted = 0
        self._sessions: OrderedDict[str, tuple[State, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def _evict_idle(self, now: int) -> None:
        for session_id in [s for s, (_, used) in self._sessions.items() if now - used > self.idle_timeout_ns]:
            del self._sessions[session_id]
            self.evicted += 1

    def open(self, session_id: str, params: dict[str, Any]) -> None:
        """Creates (or re-creates) the state of ``session_id`` from ``params``."""
        if not session_id:
            raise ValueError("session_id must be a non-empty string")
        state = self.factory(params)
        with self._lock:
            now = self.clock.now_ns()
            self._evict_idle(now)
            self._sessions.pop(session_id, None)
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
                self.evicted += 1
            self._sessions[session_id] = (state, now)

    def get(self, session_id: str) -> State:
        """The state of ``session_id``; raises :class:`UnknownSessionError` if not held."""
        with self._lock:
            now = self.clock.now_ns()
            self._evict_idle(now)
            entry = self._sessions.get(session_id)
            if entry is None:
                raise UnknownSessionError(session_id, len(self._sessions))
            self._sessions[session_id] = (entry[0], now)
            self._sessions.move_to_end(session_id)
            return entry[0]

    def close(self, session_id: str) -> bool:
        """Drops ``session_id``; True if it was held."""
        with self._lock:
            return self._sessions.pop(session_id, None) is not None

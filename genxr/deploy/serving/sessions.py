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

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.units import NS_PER_S

State = TypeVar("State")

MAX_SEED = 2**32 - 1
"""The largest seed numpy's and torch's generators take."""


Params = TypeVar("Params", bound="SessionParams")


def parse_params(model: type[Params], params: dict[str, Any]) -> Params:
    """``params`` checked against ``model``; a plain ValueError naming each bad field and value
    (pydantic's own error does not survive Ray's pickling back to the caller)."""
    try:
        return model.model_validate(params)
    except ValidationError as err:
        raise ValueError(f"session parameters {params!r}: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in err.errors())) from None


class SessionParams(BaseModel):
    """What a session sends when it opens its state on a replica (a plain dict on the wire).

    Unknown keys and values out of range are refused by :func:`parse_params` naming the field
    and the value, which the bus reports as the service being unavailable to that session.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the session's scene and sampling noise")


class WorldSessionParams(SessionParams):
    """Opening a world-model session (the student, the ground truth or the echo world)."""


class AvatarSessionParams(SessionParams):
    """Opening an avatar session."""

    start_time_ns: int = Field(ge=0, description="the session's frame 0 on the genxr clock, ns")
    guidance_scale: float = Field(1.0, ge=0.0, description="eye-contact (gaze) guidance scale")
    spatial: bool = Field(True, description="False: the spatial ablation, the generator trained without the user's "
                                            "position (generator_no_user)")
    checkpoint: str | None = Field(None, description="avatar checkpoint folder on the replica's machine; "
                                                     "None: the shipped one")


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

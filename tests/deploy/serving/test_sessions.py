"""Per-session state on a replica: opened with parameters, bounded, evicted when idle,
and an unknown session is a clear error that survives being shipped back by Ray."""

from __future__ import annotations

import pickle

import pytest

from genxr.deploy.serving.sessions import SessionStore, UnknownSessionError
from genxr.platform.clock import ManualClock


def store(clock=None, **kwargs) -> SessionStore:
    return SessionStore(lambda params: {"seed": params["seed"]}, clock=clock or ManualClock(), **kwargs)


def test_open_then_get_returns_the_state_made_from_the_params():
    sessions = store()
    sessions.open("s1", {"seed": 7})
    assert sessions.get("s1") == {"seed": 7}


def test_reopening_recreates_the_state():
    sessions = store()
    sessions.open("s1", {"seed": 7})
    sessions.open("s1", {"seed": 8})
    assert sessions.get("s1") == {"seed": 8} and len(sessions) == 1


def test_least_recently_used_session_is_evicted_at_the_limit():
    sessions = store(max_sessions=2)
    sessions.open("a", {"seed": 1})
    sessions.open("b", {"seed": 2})
    sessions.get("a")
    sessions.open("c", {"seed": 3})
    assert sessions.get("a") and sessions.get("c")
    with pytest.raises(UnknownSessionError):
        sessions.get("b")
    assert sessions.evicted == 1


def test_idle_sessions_are_evicted():
    clock = ManualClock()
    sessions = store(clock, idle_timeout_s=10)
    sessions.open("old", {"seed": 1})
    clock.advance_ns(5_000_000_000)
    sessions.open("new", {"seed": 2})
    clock.advance_ns(6_000_000_000)
    assert sessions.get("new")
    with pytest.raises(UnknownSessionError):
        sessions.get("old")


def test_unknown_session_error_says_what_to_do_and_pickles():
    sessions = store()
    with pytest.raises(UnknownSessionError) as excinfo:
        sessions.get("ghost")
    message = str(excinfo.value)
    assert "unknown session id 'ghost'" in message and "open it first" in message
    again = pickle.loads(pickle.dumps(excinfo.value))
    assert isinstance(again, UnknownSessionError) and again.session_id == "ghost"


def test_close_and_bad_limits():
    sessions = store()
    sessions.open("s", {"seed": 1})
    assert sessions.close("s") and not sessions.close("s")
    with pytest.raises(ValueError, match="max_sessions must be >= 1"):
        store(max_sessions=0)
    with pytest.raises(ValueError, match="idle_timeout_s must be > 0"):
        store(idle_timeout_s=0)
    with pytest.raises(ValueError, match="non-empty"):
        store().open("", {"seed": 1})


@pytest.mark.parametrize(("kind", "params", "named"), [
    ("world:ground_truth", {"seed": -1}, "seed"),
    ("world:echo", {"sed": 1}, "sed"),
    ("world:ground_truth", {"seed": "x"}, "seed"),
    ("avatar:stream", {"seed": 1}, "start_time_ns"),
    ("avatar:stream", {"start_time_ns": 0, "guidance_scale": -2.0}, "guidance_scale"),
])
def test_session_parameters_out_of_their_model_are_refused_naming_the_field(kind, params, named):
    from genxr.deploy.serving.deployments import MODEL_FACTORIES

    with pytest.raises(ValueError, match=rf"{named}: "):
        MODEL_FACTORIES[kind](params)


def test_session_parameters_parse_into_their_model_with_defaults():
    from genxr.deploy.serving.sessions import AvatarSessionParams, WorldSessionParams, parse_params

    assert parse_params(WorldSessionParams, {}).seed == 0
    opened = parse_params(AvatarSessionParams, {"start_time_ns": 5, "seed": 2})
    assert (opened.start_time_ns, opened.seed, opened.guidance_scale, opened.checkpoint) == (5, 2, 1.0, None)

"""Structural checks of the Chrome Trace Event files the tracer writes (as Perfetto reads them)."""

from __future__ import annotations

VALID_PHASES = {"X", "M", "s", "t", "f"}
"""Complete slices, metadata, and flow start / step / finish: the phases genxr writes."""


def validate_chrome_trace(trace: dict) -> None:
    """Structural checks of the Chrome Trace Event format as Perfetto reads it."""
    assert set(trace) >= {"traceEvents"}
    events = trace["traceEvents"]
    named_threads = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    slices: dict[int, list[tuple[float, float]]] = {}
    for event in events:
        assert event["ph"] in VALID_PHASES, event
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        if event["ph"] == "M":
            assert event["name"] in {"process_name", "thread_name", "thread_sort_index"}
            continue
        assert isinstance(event["ts"], float | int) and event["ts"] >= 0
        assert event["tid"] in named_threads, "every track has a name"
        if event["ph"] == "X":
            assert event["dur"] >= 0 and isinstance(event["name"], str)
            slices.setdefault(event["tid"], []).append((event["ts"], event["ts"] + event["dur"]))
    # Slices on one thread nest properly (Perfetto mishandles partial overlap).
    for spans in slices.values():
        stack: list[float] = []
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1], "partially overlapping slices on one track"
            stack.append(end)
    # Each flow starts once, finishes once, and every flow event lies inside a slice of its thread.
    flows: dict[int, list[str]] = {}
    for event in events:
        if event["ph"] in "stf":
            flows.setdefault(event["id"], []).append(event["ph"])
            assert any(s <= event["ts"] <= e for s, e in slices[event["tid"]]), "flow event not bound to a slice"
    for phases in flows.values():
        assert phases[0] == "s" and phases[-1] == "f" and set(phases[1:-1]) <= {"t"}

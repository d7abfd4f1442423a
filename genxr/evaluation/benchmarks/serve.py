"""``genxr bench serve``: what serving a model through Ray Serve costs a session.

All in one run on a local Ray instance (127.0.0.1):

* ``serve_rtt_ms_*`` - a world-model chunk request (four two-handed tracking frames) through
  genxr's Serve path: :class:`~genxr.deploy.serving.ray_bus.RayBus` (type checks, deadline, session
  re-open) -> the ``world:echo`` deployment (looks up the session, answers a 64x64 frame at
  once) -> the reply, type-checked;
* ``bare_handle_rtt_ms_p50`` - a bare Serve handle round trip of the same two messages (a
  deployment that returns a prepared reply; no genxr code), the baseline:
  ``serve_overhead_ratio`` = genxr / bare at p50;
* ``inproc_rtt_ms_p50`` - the same request through the in-process bus;
* ``throughput_rps_{1,2,4}_sessions`` - ground-truth world requests answered per second
  with 1, 2 and 4 sessions requesting concurrently from one replica;
* ``ort_speedup_vs_torch`` - the world-model student's steady-state chunk step exported to
  ONNX (:mod:`genxr.deploy.export.student`): eager torch time over ONNX Runtime time, one thread
  each, measured in the same run.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from genxr.deploy.export.student import export_student_step
from genxr.platform.bus import InProcessBus
from genxr.platform.messages import WorldFrameRequest, encode
from genxr.platform.stats import percentile, percentiles
from genxr.platform.units import MS_PER_S

SECONDS_PER_THROUGHPUT_RUN = 3.0


def _request(session_id: str, request_id: int = 0) -> WorldFrameRequest:
    from genxr.xr_runtime.sim_source import SimulatedSource

    with SimulatedSource(behaviour="idle", seed=0) as source:
        frames = [step.frame for step, _ in zip(source.user.steps(), range(4))]
    return WorldFrameRequest(session_id=session_id, request_id=request_id, tracking=frames)


class _BareEcho:
    """Returns ``reply`` for any request: a Serve round trip of genxr's messages with no genxr code."""

    def __init__(self, reply) -> None:
        self.reply = reply

    def __call__(self, request):
        return self.reply


def _timed(call, n: int) -> list[float]:
    for _ in range(min(20, n)):
        call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def _throughput(handle, sessions: int) -> float:
    from genxr.deploy.serving.ray_bus import RayBus
    from genxr.platform.services import WORLD_SERVICE

    counts = [0] * sessions
    stop = time.monotonic() + SECONDS_PER_THROUGHPUT_RUN

    def worker(index: int) -> None:
        with RayBus(f"bench-{sessions}-{index}") as bus:
            bus.attach(WORLD_SERVICE, handle, {"seed": index})
            request = _request(f"bench-{sessions}-{index}")
            while time.monotonic() < stop:
                bus.request(WORLD_SERVICE, request, timeout_s=30)
                counts[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / SECONDS_PER_THROUGHPUT_RUN


def run(n: int = 200) -> dict[str, float | int | None]:
    """See the module docstring; starts and stops its own Ray instance unless one is running."""
    import ray
    from ray import serve

    from genxr.deploy.serving.deployments import MODEL_FACTORIES, ModelDeployment, connect, deployment_options
    from genxr.deploy.serving.ray_bus import RayBus
    from genxr.platform.services import WORLD_SERVICE

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    started_here = not ray.is_initialized()
    handles = connect()
    try:
        bench_options = deployment_options(num_cpus=0.1)  # fits beside the app's replicas on any machine
        echo = serve.run(serve.deployment(ModelDeployment, name="echo", **bench_options).bind("world:echo"),
                         name="genxr-bench-echo", route_prefix=None)
        request = _request("bench")
        with InProcessBus(workers=1) as local:
            local.serve(WORLD_SERVICE, MODEL_FACTORIES["world:echo"]({}))
            inproc = _timed(lambda: local.request(WORLD_SERVICE, request, timeout_s=30), n)
            reply = local.request(WORLD_SERVICE, request, timeout_s=30)
        bare = serve.run(serve.deployment(_BareEcho, name="bare", **bench_options).bind(reply),
                         name="genxr-bench-bare", route_prefix=None)
        bare_rtt = _timed(lambda: bare.remote(request).result(timeout_s=30), n)
        with RayBus("bench") as bus:
            bus.attach(WORLD_SERVICE, echo, {})
            genxr_rtt = _timed(lambda: bus.request(WORLD_SERVICE, request, timeout_s=30), n)
        throughput = {k: _throughput(handles["world_model"], k) for k in (1, 2, 4)}
        serve.delete("genxr-bench-echo")
        serve.delete("genxr-bench-bare")
    finally:
        if started_here:
            serve.shutdown()
            ray.shutdown()
    with tempfile.TemporaryDirectory(prefix="genxr-bench-serve-") as tmp:
        step = export_student_step(Path(tmp) / "student_step.onnx")
    serve_p50, serve_p99 = percentiles(genxr_rtt, (50, 99), scale=MS_PER_S)
    bare_p50, bare_p99 = percentiles(bare_rtt, (50, 99), scale=MS_PER_S)
    return {
        "n": n, "request_bytes": len(encode(request)), "reply_bytes": len(encode(reply)),
        "serve_rtt_ms_p50": serve_p50, "serve_rtt_ms_p99": serve_p99,
        "bare_handle_rtt_ms_p50": bare_p50, "bare_handle_rtt_ms_p99": bare_p99,
        "serve_overhead_ratio": serve_p50 / bare_p50,
        "inproc_rtt_ms_p50": percentile(inproc, 50, scale=MS_PER_S),
        **{f"throughput_rps_{k}_sessions": v for k, v in throughput.items()},
        "ort_speedup_vs_torch": step["torch_ms"] / step["onnxruntime_ms"],
        "student_step_torch_ms": step["torch_ms"], "student_step_onnxruntime_ms": step["onnxruntime_ms"],
    }

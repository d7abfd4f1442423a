"""Two Ray nodes on one machine, both on 127.0.0.1 (a head and a worker raylet): genxr's world
deployment pinned to the worker by a custom resource, its replica killed there mid-session,
and the session goes on once Serve has started a new one.

It runs in a subprocess with a Ray cluster of its own (its own temp dir, its own processes), so
it leaves the session's local instance (``serve_handles``) alone. The nodes are started with
Ray's ``Node`` class, not ``ray start``: Ray 2.60's CLI turns ``--node-ip-address=127.0.0.1``
into the machine's LAN address, and refuses worker nodes in the single-machine mode that keeps
127.0.0.1 (see ``start_local_ray``); and ``ray stop`` would stop every Ray process of the
machine. Its processes are found by an environment marker and ended at the end either way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

MARKER = "GENXR_MULTINODE_TEST"

SCRIPT = r'''
import json, os, signal, sys, time

import ray
from ray._private import ray_constants
from ray._private.authentication.authentication_token_setup import ensure_token_if_auth_enabled
from ray._private.node import Node
from ray._private.parameter import RayParams

ray_constants.ENABLE_RAY_CLUSTER = False  # 127.0.0.1 stays 127.0.0.1 (genxr's start_local_ray)
ensure_token_if_auth_enabled({}, create_token_if_missing=True)  # RAY_AUTH_MODE=token: a token
import psutil

temp_dir = sys.argv[1]
result = {"steps": []}


def step(text):
    result["steps"].append(f"{time.monotonic() - started:5.1f}s {text}")


def node_params(**extra):
    return RayParams(node_ip_address="127.0.0.1", temp_dir=temp_dir, include_dashboard=False,
                     min_worker_port=0, max_worker_port=0, dashboard_agent_listen_port=0,
                     object_store_memory=80 * 1024 * 1024, **extra)


def raylet_pid(node):
    return node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid


def on_node(pid, node):
    """Whether process ``pid`` descends from ``node``'s raylet."""
    return raylet_pid(node) in {parent.pid for parent in psutil.Process(pid).parents()}


started = time.monotonic()
head = worker = None
try:
    head = Node(node_params(num_cpus=1), head=True, shutdown_at_exit=True, spawn_reaper=True)
    worker = Node(node_params(num_cpus=1, resources={"genxr_worker": 1}, gcs_address=head.gcs_address,
                              include_log_monitor=False, node_manager_port=0),
                  head=False, shutdown_at_exit=True, spawn_reaper=True)
    step(f"head {head.gcs_address}, worker raylet pid {raylet_pid(worker)}")
    ray.init(address=head.gcs_address, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    deadline = time.monotonic() + 30
    while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    result["nodes"] = sorted((n["NodeManagerAddress"], n["Resources"].get("genxr_worker", 0))
                             for n in ray.nodes() if n["Alive"])
    step(f"nodes {result['nodes']}")

    from ray import serve

    from genxr.deploy.serving.deployments import APP_NAME, ModelDeployment, deployment_options
    from genxr.deploy.serving.ray_bus import RayBus
    from genxr.platform.bus import RequestTimeoutError, ServiceUnavailableError
    from genxr.platform.messages import WorldFrameRequest
    from genxr.platform.services import WORLD_SERVICE
    from genxr.xr_runtime.sim_source import SimulatedSource

    serve.start(proxy_location="Disabled")
    options = deployment_options()  # build_app's world deployment, pinned to the worker node
    options["ray_actor_options"] = {**options["ray_actor_options"], "resources": {"genxr_worker": 1}}
    app = serve.deployment(ModelDeployment, name="world_model", **options).bind("world:ground_truth", 8, 300.0)
    handle = serve.run(app, name=APP_NAME, route_prefix=None)
    step("world app running")

    with SimulatedSource(behaviour="idle", seed=5) as source:
        tracking = [s.frame for s, _ in zip(source.user.steps(), range(4))]

    def request(request_id):
        return WorldFrameRequest(session_id="multinode", request_id=request_id, tracking=tracking)

    events = []
    with RayBus("multinode", on_event=lambda kind, detail: events.append([kind, detail])) as bus:
        first = bus.attach(WORLD_SERVICE, handle, {"seed": 5})
        result["first_frame"] = bus.request(WORLD_SERVICE, request(0), timeout_s=60).frame_id
        old_pid = handle.pid.remote().result(timeout_s=60)
        result["old_replica_on_worker"] = on_node(old_pid, worker)
        result["old_replica_on_head"] = on_node(old_pid, head)
        os.kill(old_pid, signal.SIGKILL)
        step(f"killed replica {old_pid}")
        frame, failures, deadline = None, 0, time.monotonic() + 60
        while frame is None and time.monotonic() < deadline:
            try:
                frame = bus.request(WORLD_SERVICE, request(1), timeout_s=10)
            except (ServiceUnavailableError, RequestTimeoutError):
                failures += 1
                time.sleep(0.5)
        result["frame_after_kill"] = None if frame is None else frame.frame_id
        result["failed_requests_meanwhile"] = failures
        step("answered again" if frame is not None else "no answer")
        new_pid = handle.pid.remote().result(timeout_s=60)
        result["replica_replaced"] = new_pid != old_pid
        result["new_replica_on_worker"] = on_node(new_pid, worker)
        result["next_frames"] = [bus.request(WORLD_SERVICE, request(i), timeout_s=30).frame_id for i in (2, 3)]
        result["described_pids"] = [first["pid"] == old_pid, bus.attached["world_model"]["pid"] == new_pid]
    result["events"] = events

    me = psutil.Process()
    listening = []
    for process in [me, *me.children(recursive=True)]:
        try:
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    listening.append([conn.laddr.ip, conn.laddr.port, process.name()])
        except psutil.Error:
            pass
    result["listening"] = listening
    serve.shutdown()
    ray.shutdown()
finally:
    for node in (worker, head):
        if node is not None:
            node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
    step("nodes stopped")
    print("RESULT " + json.dumps(result), flush=True)
'''


def marked_processes(marker: str) -> list:
    """This test's processes: those whose environment carries ``marker`` (Ray hands its
    environment down to every process it starts)."""
    import psutil
    import ray  # noqa: F401  (Ray's bundled psutil)

    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and process.environ().get(MARKER) == marker:
                found.append(process)
        except psutil.Error:
            continue
    return found


def stop(processes: list) -> None:
    import psutil

    for process in processes:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=10)


def is_loopback(ip: str) -> bool:
    return ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1")


def test_a_replica_killed_on_a_worker_node_is_restarted_and_the_session_resumes(tmp_path):
    marker = uuid.uuid4().hex
    temp_dir = tempfile.mkdtemp(prefix="genxr-mn-", dir="/tmp")  # short: Ray's socket paths live in it
    script = tmp_path / "two_nodes.py"
    script.write_text(SCRIPT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_ADDRESS")}
    env.update({MARKER: marker, "RAY_AUTH_MODE": "token"})
    try:
        run = subprocess.run([sys.executable, str(script), temp_dir], env=env, cwd=Path(__file__).parents[3],
                             capture_output=True, text=True, timeout=240)
    finally:
        leftovers = marked_processes(marker)
        stop(leftovers)
        shutil.rmtree(temp_dir, ignore_errors=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result (rc {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    result = json.loads(lines[-1].removeprefix("RESULT "))
    context = json.dumps(result, indent=1) + "\n" + run.stderr[-3000:]
    assert run.returncode == 0, context
    assert result["nodes"] == [["127.0.0.1", 0], ["127.0.0.1", 1.0]], "a head and a worker, both on 127.0.0.1"
    assert result["old_replica_on_worker"] and not result["old_replica_on_head"], "the replica ran on the worker"
    assert result["frame_after_kill"] == 3, "the session got answers again after the kill\n" + context
    assert result["replica_replaced"] and result["new_replica_on_worker"], "Serve restarted it on the worker"
    assert result["next_frames"] == [3, 3] and result["described_pids"] == [True, True], context
    assert ["model_ready", "world_model: session state re-created on a new replica"] in result["events"]
    assert result["listening"] and all(is_loopback(ip) for ip, _, _ in result["listening"]), \
        "both nodes listen on loopback only\n" + context
    assert not leftovers, f"the script stopped its own Ray processes: {[p.pid for p in leftovers]}"

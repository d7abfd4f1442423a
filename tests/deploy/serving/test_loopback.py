"""The local Ray instance ``connect()`` starts listens on loopback only: every TCP port of every
one of its processes (GCS, raylet, agents, Serve controller, replicas, this driver)."""

from __future__ import annotations

import ipaddress

import pytest

pytestmark = pytest.mark.ray

LOOPBACK = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    if address.version == 6 and address.ipv4_mapped is not None:  # ::ffff:127.0.0.1 on a dual-stack socket
        address = address.ipv4_mapped
    return address in LOOPBACK


def listening_sockets(processes) -> list[tuple[str, int, int, str]]:
    """(ip, port, pid, process name) of every listening TCP socket of ``processes``."""
    import psutil

    found = []
    for process in processes:
        try:
            name = process.name()
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((conn.laddr.ip, conn.laddr.port, process.pid, name))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_every_port_of_the_local_ray_instance_is_on_loopback(serve_handles):
    import psutil
    import ray  # puts Ray's bundled psutil on the path

    assert ray.util.get_node_ip_address() == "127.0.0.1", "the node advertises 127.0.0.1"
    replica_pids = {name: handle.pid.remote().result(timeout_s=60) for name, handle in serve_handles.items()}
    # Every process of this instance descends from this driver: it started the GCS and the raylet,
    # the raylet the agents and the workers (Serve's controller and the replicas among them).
    me = psutil.Process()
    processes = [me, *me.children(recursive=True)]
    pids = {process.pid for process in processes}
    names = {process.name() for process in processes if process.is_running()}
    assert {"gcs_server", "raylet"} <= names, f"the instance's own processes were found: {sorted(names)}"
    assert set(replica_pids.values()) <= pids, "the replicas are among them"

    sockets = listening_sockets(processes)
    listed = "\n".join(f"{ip}:{port} pid {pid} {name}" for ip, port, pid, name in sorted(sockets))
    assert {pid for _, _, pid, _ in sockets} >= {*replica_pids.values()}, f"each replica listens:\n{listed}"
    assert any(name == "gcs_server" for *_, name in sockets) and any(name == "raylet" for *_, name in sockets)
    exposed = [entry for entry in sockets if not is_loopback(entry[0])]
    assert not exposed, "listening beyond loopback:\n" + "\n".join(
        f"{ip}:{port} pid {pid} {name}" for ip, port, pid, name in exposed) + f"\n(all:\n{listed})"

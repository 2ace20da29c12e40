"""A real Ray head for the tests: ``ray start --head`` with the venv's ``ray`` CLI, 2 CPUs, on loopback.

The head runs as a user's would (GCS, raylet, workers in their own processes; the dashboard off),
with its temp dir under a fresh ``/tmp/labelwright-ray-*`` (``RAY_TMPDIR``: Ray's unix sockets
must stay short, so not pytest's deep tmp path). ``ray start`` writes the cluster's address there
(``ray/ray_current_cluster``), where ``--ray-address auto`` finds it in a process with the same
``RAY_TMPDIR``.

It is started with ``--block`` in a session of its own and stopped by signalling that process,
which stops every process of the node before it exits; then what is left of its session is
killed. Not ``ray stop``: it stops every Ray process of the machine it finds, those of other test
runs and users included.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_S = 180.0  # a head takes 25 s to start on two loaded cores


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RayHead:
    """A running head node; ``address`` is its GCS (``127.0.0.1:port``), ``env`` what a process
    needs for ``--ray-address auto`` to find it."""

    def __init__(self, code_root: Path, num_cpus: int = 2) -> None:
        ray_cli = Path(sys.executable).with_name("ray")
        if not ray_cli.is_file():
            raise FileNotFoundError(f"no ray CLI beside {sys.executable}")
        self.root = Path(tempfile.mkdtemp(prefix="labelwright-ray-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {"RAY_TMPDIR": str(self.root)}
        # the node's workers import this checkout's packages, as a cluster's nodes import the
        # labelwright installed on them
        env = {**os.environ, **self.env, "PYTHONPATH": str(code_root), "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        command = [
            str(ray_cli), "start", "--head", "--block", "--num-cpus", str(num_cpus),
            "--node-ip-address", "127.0.0.1", "--port", str(self.port),
            "--ray-client-server-port", str(free_port()), "--include-dashboard", "false",
            "--disable-usage-stats",
        ]  # fmt: skip
        self.log = self.root / "ray-start.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                command, env=env, cwd=code_root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_up()
        except BaseException:
            self.stop()
            raise

    @property
    def address_file(self) -> Path:
        return self.root / "ray" / "ray_current_cluster"

    def _wait_up(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}: {self.tail()}")
            if self.address_file.is_file() and self.address_file.read_text().strip() == self.address:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the Ray head did not start within {START_S:.0f} s: {self.tail()}")

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""

    def stop(self) -> None:
        """SIGTERM to ``ray start --block`` (it stops the node's processes), then SIGKILL to what is
        left of its session; the temp dir goes last."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session started above, by its id
        except ProcessLookupError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

"""A worker's claim on a job: its name, whether a named worker's process is gone, the heartbeat.

The lease itself lives in the store (``store.jobs``); this is the process side of it.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import timedelta

from sqlalchemy.engine import Engine

from store import jobs
from store.db import new_session

__all__ = ["Heartbeat", "process_gone", "worker_name"]


def worker_name() -> str:
    """A name no other live worker has: ``host:pid:token`` (the token tells runners in one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def process_gone(worker: str) -> bool:
    """True when ``worker`` names a process on this host that no longer exists."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, as another user
        return False
    return False


class Heartbeat:
    """Renews a job's lease every third of its length from a thread; ``lost`` is set when the job
    stopped being this worker's (then the runner stops before its next item)."""

    def __init__(self, engine: Engine, job_id: int, worker: str, lease: timedelta) -> None:
        self.lost = threading.Event()
        self._done = threading.Event()
        self._args = (engine, job_id, worker, lease)
        self._thread = threading.Thread(target=self._run, name=f"labelwright-lease-{job_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        engine, job_id, worker, lease = self._args
        while not self._done.wait(lease.total_seconds() / 3):
            try:
                with new_session(engine) as session:
                    if not jobs.renew_lease(session, job_id=job_id, worker=worker, lease=lease):
                        self.lost.set()
                        return
            except Exception:  # a database hiccup: try again next beat; the lease has slack
                continue

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

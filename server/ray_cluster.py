"""Process wiring for the Ray executor: join (or start) a Ray cluster, and build the handler.

``--ray-address local`` starts a private one-node Ray inside this process's session (no
dashboard) and stops it when the process ends. Ray itself decides where it listens: 2.60 binds
its gRPC servers on the machine's address, not loopback (it maps 127.0.0.1 to that address),
with its token authentication on (``~/.ray/auth_token``); ``auto`` joins the cluster that
``ray start --head`` started on this machine, found the way Ray finds it (``RAY_ADDRESS``, then
the ``ray_current_cluster`` file that ``ray start`` writes in its temp dir, ``$RAY_TMPDIR/ray``
or ``/tmp/ray``); anything else (``host:6379``, ``ray://host:10001``) is passed to ``ray.init``
as it is. The job's writes stay here, in the process holding its lease (tools.ray_label); only
the models run on the cluster.

Before joining, the address is asked once over TCP: ``ray.init`` at an address where nothing
listens retries for minutes (measured: over 5 minutes at 127.0.0.1:1, Ray 2.60) instead of failing.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.ray_label import RayLabelJob, RayOptions

EXECUTORS = ("thread", "ray")


def code_root() -> Path:
    """The folder holding this process's ``store``/``ops``/``tools`` packages: a local cluster's
    workers import the very code the driver runs (a checkout, not only an installed copy)."""
    import tools

    return Path(tools.__file__).resolve().parent.parent


def connect(address: str, *, num_cpus: int | None = None) -> dict[str, Any]:
    """Connect this process to Ray at ``address`` (see the module docstring); returns the cluster's
    resources. Raises ValueError naming the address when no cluster answers there."""
    import ray

    if not address:
        raise ValueError("--ray-address must be local, auto, or a cluster address such as host:6379")
    if address != "local":
        _check_answers(address)
    if not ray.is_initialized():
        if address == "local":
            path = os.pathsep.join(p for p in (str(code_root()), os.environ.get("PYTHONPATH", "")) if p)
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
        else:
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError as exc:
                told = f"no Ray cluster answers at --ray-address {address!r} ({exc})"
                raise ValueError(f"{told}; {_hint(exc)}") from None
    return dict(ray.cluster_resources())


def _hint(exc: BaseException) -> str:
    """What to do about a refused ``ray.init``: most often, a cluster with token authentication
    (Ray's default for ``ray start`` since 2.59) that an explicit address does not send the token
    to unless RAY_AUTH_MODE=token says so (only ``auto`` turns it on by itself)."""
    if "token" in str(exc.__cause__).lower() and os.environ.get("RAY_AUTH_MODE") != "token":
        return (
            "the cluster wants its authentication token: set RAY_AUTH_MODE=token, with the token in "
            "~/.ray/auth_token or RAY_AUTH_TOKEN (`ray get-auth-token` on the head prints it)"
        )
    return "start one with `ray start --head`, or use --ray-address local for a private one"


PROBE_S = 5.0  # how long a cluster address may take to accept a TCP connection


def _check_answers(address: str) -> None:
    """Raise ValueError naming ``address`` (and what ``auto`` stood for) unless something accepts a
    TCP connection there: the GCS of ``host:port``, the client server of ``ray://host:port``."""
    from ray._private.services import canonicalize_bootstrap_address

    told = f"no Ray cluster answers at --ray-address {address!r}"
    fix = "start one with `ray start --head`, or use --ray-address local for a private one"
    form = f"--ray-address must be local, auto, host:port or ray://host:port, got {address!r}"
    try:
        if address.startswith("ray://"):
            resolved = address.removeprefix("ray://").split("/", 1)[0]
        else:  # Ray's own reading of auto, RAY_ADDRESS and host:port
            resolved = canonicalize_bootstrap_address(address) or ""
    except ConnectionError as exc:  # auto, and no cluster to be found
        raise ValueError(f"{told} ({exc}); {fix}") from None
    except ValueError:
        raise ValueError(form) from None
    host, _, port = resolved.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(form)
    via = f" ({resolved})" if resolved != address.removeprefix("ray://") else ""
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_S).close()
    except OSError as exc:
        raise ValueError(f"{told}{via}: {exc.strerror or exc}; {fix}") from None


def ray_label_job(
    home: Path, backends_factory: Callable[[], Any], address: str, options: RayOptions
) -> RayLabelJob:
    """The ``auto_label`` handler on Ray, after checking that the cluster can place the actors (a
    ``local`` Ray offers at least one CPU slot per replica: the machine is the user's to share)."""
    local_cpus = max(os.cpu_count() or 1, math.ceil(options.cpus * options.replicas))
    resources = connect(address, num_cpus=local_cpus if address == "local" else None)
    need = {"CPU": options.cpus * options.replicas, "GPU": options.gpus * options.replicas}
    short = {k: (v, resources.get(k, 0.0)) for k, v in need.items() if v > resources.get(k, 0.0)}
    if short:
        told = ", ".join(f"{k} {want:g} wanted, {have:g} in the cluster" for k, (want, have) in short.items())
        raise ValueError(f"the Ray cluster cannot place {options.replicas} model replicas: {told}")
    return RayLabelJob(home=home, backends_factory=backends_factory, options=options)

"""The Ray cluster a `--engine ray` scan runs on: one it joins (`--address`, RAY_ADDRESS), checked to answer before
Ray would retry for minutes, or a one-node Ray it starts for itself, leaner than `ray.init`'s (docs/scale.md).

Nothing at import time needs ray; the ray module is passed in by the engine, which imported it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from mer_tag.errors import MerTagError, first_line

CONNECT_TIMEOUT_S = 5.0  # s; a cluster's head answers at once, and ray.init itself would retry for minutes
DRIVER_BREAKPOINT = "ray.util.rpdb._driver_set_trace"  # what ray.init sets PYTHONBREAKPOINT to in a driver


def address(given: str | None) -> str | None:
    """The cluster to join: the address given, else RAY_ADDRESS; None: start a local one."""
    return given or os.environ.get("RAY_ADDRESS") or None


def joining(given: str | None, num_cpus: int | None) -> str:
    """What a scan says it is doing first: joining a cluster, or starting a local one."""
    to_join = address(given)
    if to_join:
        return f"connecting to the Ray cluster at {to_join}…"
    return f"starting a local Ray cluster ({num_cpus} CPU{'s' if num_cpus != 1 else ''})…"


def connect(ray, given: str | None, num_cpus: int | None, local=None) -> tuple[bool, Any]:
    """Join the cluster at `given` (else RAY_ADDRESS), or start a local one of `num_cpus` CPUs (`local()`, from
    `local_cluster`, where the caller set it up already): (whether this call started Ray and must shut it down,
    the local cluster's node when this call started one itself, for its caller to stop)."""
    if ray.is_initialized():
        return False, None
    kwargs = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    write_environment()
    to_join = address(given)
    if to_join:
        check_reachable(to_join)
        try:
            ray.init(address=to_join, **kwargs)
        except Exception as exc:  # Ray's own reasons, as one line
            raise RayClusterError(f"cannot join the Ray cluster at {to_join}: {first_line(exc)}") from None
        return True, None
    local = local or local_cluster(num_cpus)
    if local is None:  # this Ray's private modules differ: ray.init's own cluster
        ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
        return True, None
    node = local()  # a throwaway local cluster for this scan
    try:
        ray.init(address=node.address, **kwargs)
    except BaseException:
        node.kill_all_processes(check_alive=False, allow_graceful=True)
        raise
    return True, node


def write_environment() -> None:
    """The variables joining a cluster adds to this process's environment, added now: a caller that starts a thread
    before it connects calls this first, since adding a variable may move the environment's array while that
    thread's C code reads it (glibc's getenv takes no lock); setting one that exists replaces it in place."""
    # A task that failed (a track whose decoder crashed) is an error row already: not Ray's "Unhandled error".
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    os.environ.setdefault("PYTHONBREAKPOINT", DRIVER_BREAKPOINT)  # what ray.init then sets it to


class RayClusterError(MerTagError):
    """No Ray cluster to join at the address given; one line for the user."""


def check_reachable(address: str) -> None:
    """A RayClusterError for an address no cluster can be at, or none answers at, before ray.init would
    retry for minutes (printing Ray's own lines) or end in a traceback. 'auto' and 'local' are Ray's words."""
    import socket

    if address in ("auto", "local"):
        return
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit():
        raise RayClusterError(f"--address {address}: give HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RayClusterError(f"no Ray cluster answers at {address} ({(exc.strerror or str(exc)).lower()})") from None


def local_cluster(num_cpus: int | None) -> Callable[[], Any] | None:
    """What starts a one-node Ray for this scan alone, set up (what it adds to the environment written) but not
    started. It starts as `ray.init` starts one, but without three processes it never needs here: the
    autoscaler's monitor (there is nothing to scale), the log monitor (it forwards workers' output to drivers,
    and ours does not listen: log_to_driver=False) and the API server (the dashboard's head: without a dashboard
    it still starts, to run only its usage-statistics module, which is off here; Ray waits for it before it
    starts the raylet). Without the monitors it costs 0.9 CPU-s less to start (4.1 → 3.2), without the API
    server too about a further 0.9 CPU-s and 1 s (docs/performance.md), on the same cores the scan then needs,
    and none of them polls while the scan runs. Its processes die with this one, as ray.init's do (Ray's kernel
    fate-sharing), and it is set up as ray.init sets up a cluster of its own: token authentication on, no usage
    statistics. Ray's own Node class, which ray.init and ray.cluster_utils use; None where this Ray's private
    modules differ: ray.init's cluster."""
    try:
        from ray._common.usage import usage_lib
        from ray._private.authentication.authentication_token_setup import (
            enable_token_auth_by_default,
            ensure_token_if_auth_enabled,
        )
        from ray._private.node import Node
        from ray._private.parameter import RayParams

        params = RayParams(
            num_cpus=num_cpus,
            include_dashboard=False,
            no_monitor=True,
            include_log_monitor=False,  # type: ignore[arg-type]  # annotated str, read as a flag
        )
        Node.start_api_server  # noqa: B018  # the step `ScanNode` leaves out: this Ray has it
    except (ImportError, TypeError, AttributeError):
        return None

    class ScanNode(Node):
        def start_api_server(self, **_) -> None:
            self._webui_url = ""  # no dashboard, as the API server of a Ray without one reports

    ray_log = logging.getLogger("ray")
    level, ray_log.level = ray_log.level, logging.ERROR  # its "token authentication is enabled" note
    try:
        enable_token_auth_by_default()  # what ray.init does before it starts a cluster of its own
        ensure_token_if_auth_enabled({}, create_token_if_missing=True)
    finally:
        ray_log.setLevel(level)
    usage_lib.set_usage_stats_enabled_via_env_var(False)
    return lambda: ScanNode(params, head=True, shutdown_at_exit=False, spawn_reaper=True)

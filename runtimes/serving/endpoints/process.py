"""One endpoint's process: `python -m runtimes.serving.endpoints.process WORKSPACE NAME`. Binds its port on the
endpoint's host (loopback by default; the port it had before, so its URL survives a restart) and supervises the
replica processes that serve the OpenAI-compatible API on it (`supervisor.py`, `replica.py`), recording its
status and events as it goes.

It serves only what the endpoint's stored row says (resolved and checked at deploy); it never reads the registry,
so a start is quick. SIGTERM stops it cleanly (`stopped`); any failure ends it `failed` with the reason.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import time
from typing import Any

from core.offline import apply_offline_env

log = logging.getLogger("lathe.endpoint")
PORT_WAIT_S = 5.0
HEALTHCHECK_S = 60


class Terminated(Exception):
    """SIGTERM or SIGINT arrived before uvicorn took over the signals (while loading)."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtimes.serving.endpoints.process")
    parser.add_argument("workspace")
    parser.add_argument("name")
    args = parser.parse_args(argv)
    apply_offline_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from core.errors import UserError
    from core.workspace import Workspace
    from runtimes.serving.endpoints.store import EndpointStore

    ws = Workspace.resolve(args.workspace).require()
    store = EndpointStore(ws)
    try:
        endpoint = store.get(args.name)
    except UserError as e:
        log.error("%s", e)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    try:
        serve(ws, store, endpoint)
    except Terminated as e:
        store.set_status(endpoint.name, "stopped", f"stopped ({e}) while starting")
        return 0
    except BaseException as e:
        log.exception("endpoint %s failed", endpoint.name)
        reason = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        # A replica that failed to load recorded its own reason first; that one stays.
        store.set_status(endpoint.name, "failed", f"failed: {reason}", error=reason,
                         expect=("starting", "running", "idle"))
        return 1
    store.set_status(endpoint.name, "stopped", "stopped", expect=("starting", "running", "idle"))
    return 0


def serve(ws: Any, store: Any, endpoint: Any) -> None:
    import uvicorn

    from runtimes.serving.endpoints.deploy import endpoint_dir
    from runtimes.serving.endpoints.replica import ENV_NAME, ENV_WORKSPACE
    from runtimes.serving.endpoints.replica_load import replicas_dir
    from runtimes.serving.endpoints.scaling import Scaling
    from runtimes.serving.endpoints.supervisor import Supervisor

    sock = _bind_kept(store, endpoint)
    port = sock.getsockname()[1]
    scaling = Scaling.of(endpoint.scaling)
    store.set_status(endpoint.name, "starting", f"starting on {endpoint.host}:{port} (pid {os.getpid()}, "
                     f"{scaling.min_replicas} replica(s))", port=port, pid=os.getpid(), started_at=time.time())
    sock.listen(128)  # connections wait in the backlog from now on, never refused while a replica starts
    os.environ.update({ENV_WORKSPACE: str(ws.root), ENV_NAME: endpoint.name})  # the replicas inherit these
    config = uvicorn.Config("runtimes.serving.endpoints.replica:create", factory=True, workers=scaling.min_replicas,
                            log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            # A replica busy loading on a loaded machine may answer uvicorn's ping late; one that
                            # dies is seen at once all the same (its process ends).
                            timeout_worker_healthcheck=HEALTHCHECK_S)
    folder = replicas_dir(endpoint_dir(ws, endpoint.name))
    shutil.rmtree(folder, ignore_errors=True)  # figures of an earlier run's replicas
    supervisor = Supervisor(config, sock, store, endpoint.name, endpoint.mode, scaling, folder)
    log.info("endpoint %s on http://%s:%s/v1: %s to %s replicas", endpoint.name, endpoint.host, port,
             scaling.min_replicas, scaling.max_replicas)
    supervisor.run()
    if supervisor.startup_failed:
        raise RuntimeError("a replica could not start (see the log above)")


def _bind_kept(store: Any, endpoint: Any) -> socket.socket:
    """The port the endpoint asked for, else the one it listened on last (its URL stays the same across restarts),
    else any free one. A last port still held a moment by the replicas of a killed run is waited for briefly."""
    if endpoint.fixed_port:
        return _bind(endpoint.host, endpoint.fixed_port)
    if endpoint.port:
        deadline = time.monotonic() + PORT_WAIT_S
        while True:
            try:
                return _bind(endpoint.host, endpoint.port)
            except Exception as e:
                if time.monotonic() > deadline:
                    store.add_event(endpoint.name, "port_changed", f"port {endpoint.port} is taken ({e}); "
                                    "listening on another", {"old": endpoint.port})
                    break
            time.sleep(0.1)
    return _bind(endpoint.host, 0)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        from core.errors import UserError

        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}; choose another port (--port)") from None
    return sock


if __name__ == "__main__":
    sys.exit(main())

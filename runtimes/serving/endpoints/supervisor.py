"""The endpoint's supervisor: uvicorn's multiprocess supervisor over one listening socket (one stable address),
whose worker processes are the endpoint's replicas. uvicorn replaces a replica that dies and adds or removes one
on request; this adds the scaling rule (`scaling.decide` on what the replicas report) and records every change
(replica ready, replaced, scaled up or down) as an endpoint event.
"""
from __future__ import annotations

import logging
import pickle
import shutil
import socket
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors import Multiprocess, multiprocess

from runtimes.serving.endpoints.replica_load import read_all
from runtimes.serving.endpoints.scaling import Load, Scaling, decide

log = logging.getLogger("lathe.endpoint")
TICK_S = 0.5  # uvicorn's own supervision interval


class Replica(multiprocess.Process):
    """uvicorn's worker process, whose health check ends when the process does."""

    def _healthcheck(self, timeout: float) -> bool | None:
        # uvicorn waits for the pong for the whole timeout, even when the replica dies meanwhile: the supervisor
        # holds the child's end of the pipe too, so no end-of-file comes. A replica that failed to load would
        # hold its endpoint's start for the full health-check time (a minute).
        try:
            self.parent_conn.send(b"ping")
            if self.parent_conn in wait([self.parent_conn, self.process.sentinel], timeout):
                started: bool = self.parent_conn.recv()
                return started
            return None
        except (OSError, EOFError, pickle.UnpicklingError):
            return None


class Supervisor(Multiprocess):
    def __init__(self, config: Config, sock: socket.socket, store: Any, name: str, mode: str, scaling: Scaling,
                 folder: Path) -> None:
        multiprocess.Process = Replica  # type: ignore[misc]  # uvicorn builds every worker from this name
        super().__init__(config, [sock])  # queues SIGTERM/SIGINT: a stop ends the loop and stops the replicas
        self.store, self.name, self.mode, self.scaling, self.folder = store, name, mode, scaling, folder
        self.ready: set[int] = set()
        self.busy_at = time.monotonic()
        self.startup_failed = False
        self.ever_ready = False

    def run(self) -> None:
        self.init_processes()
        while not self.should_exit.wait(TICK_S):
            self.handle_signals()
            self.keep_subprocess_alive()
            self._watch_ready()
            self._autoscale()
        self.terminate_all()
        self.join_all()
        shutil.rmtree(self.folder, ignore_errors=True)

    def keep_subprocess_alive(self) -> None:
        before = list(self.processes)
        super().keep_subprocess_alive()
        for old, new in zip(before, self.processes):
            if old is not new:
                self._forget(old.pid)
                if not self.ever_ready and self.store.get(self.name).status == "failed":
                    # No replica ever started and one recorded why: another would fail the same way.
                    self.startup_failed = True
                    self.should_exit.set()
                self._event("replica_replaced", f"replica {old.pid} died (exit code {old.exitcode}); "
                            f"replica {new.pid} replaces it", {"dead": old.pid, "exitcode": old.exitcode,
                                                               "replica": new.pid})
        if any(p.exitcode == STARTUP_FAILURE for p in before):
            self.startup_failed = True

    def _watch_ready(self) -> None:
        for p in self.processes:
            if p.pid not in self.ready and p.is_ready(timeout=TICK_S):
                self.ready.add(p.pid)
                self.ever_ready = True
                n = len(self._ready_pids())
                self._event("replica_ready", f"replica {p.pid} ready ({n} of {len(self.processes)})",
                            {"replica": p.pid, "ready": n, "replicas": len(self.processes)})
                # The first ready replica makes the endpoint answer: real-time `running`, serverless `idle`.
                status = "idle" if self.mode == "serverless" else "running"
                ready = "idle: loads its models on the first request" if status == "idle" else "running"
                self.store.set_status(self.name, status, ready, expect=("starting",))

    def _autoscale(self) -> None:
        if self.should_exit.is_set():
            return
        pids = {p.pid for p in self.processes if p.pid is not None}
        rows = read_all(self.folder, pids & self.ready)
        in_flight = sum(r.get("in_flight", 0) for r in rows)
        p95s = [r["p95_ms"] for r in rows if r.get("p95_ms") is not None]
        now = time.monotonic()
        if in_flight:
            self.busy_at = now
        d = decide(self.scaling, replicas=len(self.processes), starting=len(pids - self.ready),
                   load=Load(in_flight=in_flight, p95_ms=max(p95s) if p95s else None), idle_for_s=now - self.busy_at)
        if d.change > 0:
            self.handle_ttin()
            self._event("scaled_up", f"scaled up to {len(self.processes)} replicas: {d.reason}",
                        {"replicas": len(self.processes), "reason": d.reason, "in_flight": in_flight})
        elif d.change < 0:
            leaving = self.processes[-1].pid
            self.handle_ttou()  # the newest replica stops gracefully (its requests finish first)
            self._forget(leaving)
            self.busy_at = now  # the next step down waits a whole idle period again
            self._event("scaled_down", f"scaled down to {len(self.processes)} replicas: {d.reason}",
                        {"replicas": len(self.processes), "reason": d.reason, "stopped": leaving})

    def _ready_pids(self) -> set[int]:
        return self.ready & {p.pid for p in self.processes if p.pid is not None}

    def _forget(self, pid: int | None) -> None:
        self.ready.discard(pid)  # type: ignore[arg-type]
        (self.folder / f"{pid}.json").unlink(missing_ok=True)

    def _event(self, kind: str, message: str, data: dict[str, Any]) -> None:
        log.info("%s", message)
        try:
            self.store.add_event(self.name, kind, message, data)
        except Exception:  # the workspace's state is busy or gone: supervising matters more than the record
            log.exception("could not record %s", kind)


def live_replica_pids(supervisor_pid: int | None) -> set[int]:
    """The supervisor's replica processes now (empty when it is gone); not its other children, such as
    multiprocessing's resource tracker."""
    import psutil

    if not supervisor_pid:
        return set()
    found = set()
    try:
        children = psutil.Process(supervisor_pid).children()
    except psutil.Error:
        return set()
    for c in children:
        try:
            if c.status() != psutil.STATUS_ZOMBIE and any("spawn_main" in part for part in c.cmdline()):
                found.add(c.pid)
        except psutil.Error:  # it ended meanwhile
            continue
    return found

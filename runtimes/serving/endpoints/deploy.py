"""Deploying endpoints and running their processes: `deploy` checks everything first (versions exist and are
approved, adapters fit their base, the name and port are free), then starts the endpoint in its own process
(`python -m runtimes.serving.endpoints.process`) and waits until `/health` answers; `start`, `stop`, `delete`.

A failed deploy leaves nothing behind (no row, no process, no key file). An endpoint whose process died is
reported `failed`, never `running`. It never signals a process it cannot tell is that endpoint's own.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import UserError, validate_input
from core.offline import OFFLINE_ENV
from core.workspace import Workspace
from runtimes.serving.endpoints.store import LIVE, Endpoint, EndpointStore

_ROOT = Path(__file__).resolve().parents[3]
_MODULE = "runtimes.serving.endpoints.process"
RESERVED = frozenset({"batch", "async"})  # traffic of the batch and async paths goes under these names
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0
STARTING_GRACE_S = 30.0  # a row marked starting with no pid yet is the launcher's, not a dead process


class DeploySpec(BaseModel):
    """What a deploy asks for; everything is checked before anything starts."""
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(..., min_length=1, description="registered versions (NAME: its latest approved "
                              "version, NAME@N, NAME@approved, NAME@latest) or workspace base models; several LoRA "
                              "versions over one base share one endpoint")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
                             description="the endpoint's name; default: the first model's name")
    mode: Literal["realtime", "serverless"] = "realtime"
    idle_timeout: float = Field(300.0, gt=0, le=7 * 24 * 3600, description="serverless: seconds idle before "
                                "the models are unloaded")
    host: str = Field("127.0.0.1", min_length=1, description="where it listens; loopback unless asked")
    port: int | None = Field(None, ge=1, le=65535, description="a fixed port; default: any free one")
    max_adapters: int = Field(4, ge=1, le=256, description="LoRA adapters kept loaded per base model")
    capture_rate: float = Field(1.0, ge=0.0, le=1.0, description="share of requests captured for monitoring")
    quantize: str = Field("none", description="none, int8 (CPU or GPU) or int4 (GPU): see serving.quantization")
    backend: Literal["transformers", "vllm"] = Field("transformers", description="the generation engine: "
                                                     "transformers (CPU or GPU), or vLLM where it is installed")
    speculation: dict[str, Any] | None = Field(None, description="speculative decoding settings, as the engine "
                                               "takes them (a draft model or prompt lookup)")


@dataclass(frozen=True)
class Deployment:
    endpoint: Endpoint
    api_key: str | None  # shown once, when the endpoint is created; None when it already existed
    created: bool


# ---- deploy --------------------------------------------------------------------------------------------
def deploy(ws: Workspace, models: Sequence[str], *, name: str | None = None, mode: str = "realtime",
           idle_timeout: float = 300.0, host: str = "127.0.0.1", port: int | None = None, max_adapters: int = 4,
           capture_rate: float = 1.0, quantize: str = "none", speculation: dict[str, Any] | None = None,
           backend: str = "transformers", start_timeout_s: float = START_TIMEOUT_S,
           owner: str | None = None, scaling: dict[str, Any] | None = None) -> Deployment:
    """Check, create and start an endpoint; an existing endpoint of that name serving the same models in the
    same mode is its own and is (re)started instead. `owner` (who deploys) holds the API key when it is an enabled
    workspace user: the key stops working when that user is disabled; any other name leaves the key to the
    workspace (no user), since no one could be disabled to revoke it. `scaling`: replicas and admission
    (`scaling.Scaling`: min_replicas, max_replicas, max_concurrency, …)."""
    spec = validate_input(DeploySpec, {"models": list(models), "name": name, "mode": mode,
                                       "idle_timeout": idle_timeout, "host": host, "port": port,
                                       "max_adapters": max_adapters, "capture_rate": capture_rate,
                                       "quantize": quantize, "speculation": speculation, "backend": backend},
                      "deploy")
    if spec.backend == "vllm":
        from runtimes.serving.engines.vllm_engine import require_vllm

        require_vllm()
        if spec.quantize != "none" or spec.speculation is not None:
            raise UserError("--quantize and speculative decoding are the transformers backend's; vLLM takes its "
                            "own (a quantized checkpoint, its speculative config)")
    if spec.quantize != "none":
        from runtimes.serving.engines.quantization import check_mode

        check_mode(spec.quantize, _device())
    replicas = _scaling(scaling)
    served = resolve_models(ws, spec.models)
    endpoint_name = spec.name or _default_name(spec.models[0])
    if endpoint_name in RESERVED:
        raise UserError(f"`{endpoint_name}` is reserved for {endpoint_name} inference traffic: choose another "
                        "name (--name)")
    store = EndpointStore(ws)
    existing = refresh(ws, endpoint_name)
    if existing is not None:
        if existing.model_ids == [m["id"] for m in served] and existing.mode == spec.mode:
            return Deployment(start(ws, endpoint_name, timeout_s=start_timeout_s, scaling=scaling), None, False)
        raise UserError(f"an endpoint named `{endpoint_name}` already exists ({existing.mode}, serving "
                        f"{', '.join(existing.model_ids)}): choose another name (--name) or delete it first "
                        f"(`lathe endpoints delete {endpoint_name}`)")
    if spec.port is not None:
        _check_port(store, spec.host, spec.port)

    from runtimes.serving.endpoints.api_keys import key_hash, new_key

    key, local = new_key(), new_key()
    owner = owner if owner is not None and _is_user(ws, owner) else None
    # Raises when another deploy took the name meanwhile: then nothing here is ours to undo.
    store.create(name=endpoint_name, models=served, mode=spec.mode, idle_timeout=spec.idle_timeout,
                 host=spec.host, fixed_port=spec.port, key_hash=key_hash(key), local_key_hash=key_hash(local),
                 engine=_engine_options(spec), capture_rate=spec.capture_rate, owner=owner, scaling=replicas)
    try:
        folder = endpoint_dir(ws, endpoint_name)
        folder.mkdir(parents=True, exist_ok=True)
        _write_secret(folder / "local.key", local)
        endpoint = start(ws, endpoint_name, timeout_s=start_timeout_s)
    except BaseException:
        _remove(ws, endpoint_name, store)
        raise
    return Deployment(endpoint, key, True)


def resolve_models(ws: Workspace, refs: Sequence[str]) -> list[dict]:
    """Each reference resolved to the files it serves and checked: approved, present, adapter fitting its base."""
    from runtimes.serving.engines.adapter_fit import check_adapter_fits
    from runtimes.models.refs import resolve_served
    from runtimes.tabular.scoring import tabular_fields

    resolved: list[dict] = []
    for ref in refs:
        served = resolve_served(ws, ref)
        if served.adapter:
            try:
                check_adapter_fits(served.base, served.adapter)
            except UserError as e:
                raise UserError(f"cannot deploy `{ref}`: {e}") from None
        if any(r["id"] == served.id for r in resolved):
            raise UserError(f"`{ref}` names `{served.id}`, which this deploy already serves: list each version once")
        resolved.append({"ref": ref.strip(), **served.to_json(), **tabular_fields(served)})
    if len(resolved) > 1 and any(m.get("kind") == "tabular" for m in resolved):
        raise UserError("a table model is served alone, one per endpoint: deploy each to its own endpoint")
    return resolved


# ---- processes -----------------------------------------------------------------------------------------
def start(ws: Workspace, name: str, *, timeout_s: float = START_TIMEOUT_S,
          scaling: dict[str, Any] | None = None) -> Endpoint:
    """Start a stopped or failed endpoint's process and wait until `/health` answers; a live one is left as is.
    `scaling` (some of `scaling.Scaling`'s fields) replaces those stored, from this start on."""
    store = EndpointStore(ws)
    endpoint = refresh(ws, name) or store.get(name)
    if scaling:
        store.update(name, scaling=_scaling({**(endpoint.scaling or {}), **scaling}))
    if endpoint.status in LIVE:
        return endpoint
    # The port stays: the process listens where it listened before, so clients' URLs keep working.
    if not store.set_status(name, "starting", "start requested", expect=("stopped", "failed")):
        return store.get(name)
    proc = _spawn(ws, name)
    store.update(name, pid=proc.pid)
    deadline = time.monotonic() + timeout_s
    while True:
        code = proc.poll()
        current = store.get(name)
        if code is not None:
            reason = current.error or _log_tail(ws, name) or f"its process exited with code {code}"
            store.set_status(name, "failed", f"failed to start: {reason}", error=reason, expect=LIVE)
            raise UserError(f"endpoint `{name}` did not start: {reason}")
        if current.status in ("running", "idle") and current.port and _healthy(current):
            return current
        if time.monotonic() > deadline:
            _terminate(proc.pid, name)
            store.set_status(name, "failed", f"did not answer within {timeout_s:.0f} s", expect=LIVE,
                             error=f"did not answer /health within {timeout_s:.0f} s")
            raise UserError(f"endpoint `{name}` did not answer within {timeout_s:.0f} s; see {log_path(ws, name)}")
        time.sleep(0.05)


def stop(ws: Workspace, name: str, *, timeout_s: float = STOP_TIMEOUT_S) -> Endpoint:
    """Stop the endpoint's process (SIGTERM, then SIGKILL after `timeout_s`); it stays listed, `stopped`."""
    store = EndpointStore(ws)
    endpoint = store.get(name)
    if endpoint.pid and is_endpoint_alive(endpoint.pid, name):
        _terminate(endpoint.pid, name, timeout_s)
    store.set_status(name, "stopped", "stopped by request", expect=LIVE)
    return store.get(name)


def delete(ws: Workspace, name: str) -> None:
    """Stop the endpoint if it runs, then remove it: its row, events, log and local key."""
    store = EndpointStore(ws)
    store.get(name)
    stop(ws, name)
    _remove(ws, name, store)


def refresh(ws: Workspace, name: str) -> Endpoint | None:
    """The endpoint as it is now: one marked live whose process is gone is recorded `failed` first."""
    store = EndpointStore(ws)
    endpoint = store.find(name)
    if endpoint is None or endpoint.status not in LIVE:
        return endpoint
    if endpoint.pid is None:
        if time.time() - (endpoint.started_at or endpoint.created_at) < STARTING_GRACE_S:
            return endpoint
    elif is_endpoint_alive(endpoint.pid, name):
        return endpoint
    reason = f"its process (pid {endpoint.pid}) is gone" if endpoint.pid else "its process never started"
    store.set_status(name, "failed", f"failed: {reason}", error=reason, expect=LIVE)
    return store.get(name)


def list_endpoints(ws: Workspace) -> list[Endpoint]:
    return [e for e in (refresh(ws, x.name) for x in EndpointStore(ws).list()) if e is not None]


def get_endpoint(ws: Workspace, name: str) -> Endpoint:
    return refresh(ws, name) or EndpointStore(ws).get(name)


def is_endpoint_alive(pid: int, name: str) -> bool:
    """The process exists, is not a zombie, and is this endpoint's (a reused pid is not)."""
    import psutil

    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        cmd = p.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return _MODULE in cmd and name in cmd


def endpoint_dir(ws: Workspace, name: str) -> Path:
    return ws.root / "runs" / "endpoints" / name


def log_path(ws: Workspace, name: str) -> Path:
    return endpoint_dir(ws, name) / "endpoint.log"


def local_key(ws: Workspace, name: str) -> str:
    """The key the workspace's own tools (CLI, agent) call the endpoint with; clients get theirs at deploy."""
    path = endpoint_dir(ws, name) / "local.key"
    if not path.exists():
        raise UserError(f"endpoint `{name}` has no local key at {path}: pass its API key (--api-key)")
    return path.read_text(encoding="utf-8").strip()


def _spawn(ws: Workspace, name: str) -> subprocess.Popen:
    log = log_path(ws, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **OFFLINE_ENV,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "ab") as out:
        # Its own session: the endpoint outlives the command that deployed it and its terminal's Ctrl-C.
        return subprocess.Popen([sys.executable, "-m", _MODULE, str(ws.root), name], cwd=_ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _terminate(pid: int, name: str, timeout_s: float = STOP_TIMEOUT_S) -> None:
    import psutil

    if not is_endpoint_alive(pid, name):
        return
    try:
        p = psutil.Process(pid)
        p.send_signal(signal.SIGTERM)
        if not _ended(p, name, timeout_s):
            p.kill()
            if not _ended(p, name, timeout_s):
                raise UserError(f"endpoint `{name}` (pid {pid}) did not stop, even when killed")
    except psutil.NoSuchProcess:
        pass


def _ended(p: Any, name: str, timeout_s: float) -> bool:
    """Waits until the process has ended: reaped when it is this process's child; when another program started
    it (the chat UI, say), ended is a zombie its parent has yet to reap."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            p.wait(0.05)
            return True
        except psutil.TimeoutExpired:
            if not is_endpoint_alive(p.pid, name):
                return True
    return False


def _healthy(endpoint: Endpoint) -> bool:
    import httpx

    try:
        return httpx.get(f"{endpoint.base_url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _check_port(store: EndpointStore, host: str, port: int) -> None:
    owner = store.ports_in_use().get(port)
    if owner is not None:
        raise UserError(f"port {port} belongs to endpoint `{owner}`: choose another port or leave --port out")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise UserError(f"port {port} on {host} is not free ({e.strerror or e}): choose another port or "
                            "leave --port out") from None


def _engine_options(spec: DeploySpec) -> dict[str, Any]:
    """The keyword arguments each `Engine` of the endpoint is made with."""
    options: dict[str, Any] = {"max_adapters": spec.max_adapters}
    if spec.backend != "transformers":
        options["backend"] = spec.backend
    if spec.quantize != "none":
        options["quantize"] = spec.quantize
    if spec.speculation is not None:
        options["speculation"] = spec.speculation
    return options


def _scaling(given: dict[str, Any] | None) -> dict[str, Any]:
    """The scaling settings given (the rest take their defaults at each start), checked."""
    from runtimes.serving.endpoints.scaling import Scaling

    chosen = {k: v for k, v in (given or {}).items() if v is not None}
    validate_input(Scaling, chosen, "scaling")
    return chosen


def _is_user(ws: Workspace, name: str) -> bool:
    from core.users import UserStore

    return UserStore(ws).is_enabled(name)


def _device() -> str:
    return "cuda" if shutil.which("nvidia-smi") else "cpu"  # what the endpoint's engine will pick, without torch


def _default_name(ref: str) -> str:
    stem = ref.strip().partition("@")[0].rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.")[:63] or "endpoint"


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def _remove(ws: Workspace, name: str, store: EndpointStore) -> None:
    endpoint = store.find(name)
    if endpoint is not None and endpoint.pid and is_endpoint_alive(endpoint.pid, name):
        _terminate(endpoint.pid, name)
    store.delete(name)
    shutil.rmtree(endpoint_dir(ws, name), ignore_errors=True)


def _log_tail(ws: Workspace, name: str, lines: int = 5) -> str:
    path = log_path(ws, name)
    if not path.exists():
        return ""
    tail = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return " | ".join(tail[-lines:])

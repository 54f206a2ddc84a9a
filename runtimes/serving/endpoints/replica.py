"""One replica of an endpoint: the app uvicorn builds in each worker process the supervisor starts
(`create`, a factory). It loads the endpoint's models (real-time) or waits for the first request (serverless),
serves the OpenAI API, reports its load and loaded adapters, and answers the authenticated `/v1/lathe/status`.

It reads the endpoint from the workspace (named by the supervisor in its environment) and dies with the supervisor.
"""
from __future__ import annotations

import gc
import logging
import os
import sys
import time
from typing import Any

log = logging.getLogger("lathe.endpoint")

ENV_WORKSPACE, ENV_NAME = "LATHE_ENDPOINT_WORKSPACE", "LATHE_ENDPOINT_NAME"
STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that cannot start: the supervisor stops, not retries
EVENTS_SHOWN = 20


def create() -> Any:
    """The replica's ASGI app, its models loaded (real-time); a failure to load fails the endpoint."""
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from core.workspace import Workspace
    from runtimes.serving.endpoints.store import EndpointStore

    ws = Workspace.resolve(os.environ[ENV_WORKSPACE]).require()
    store = EndpointStore(ws)
    name = os.environ[ENV_NAME]
    try:
        return _build(ws, store, store.get(name))
    except Exception as e:
        from core.errors import UserError

        log.exception("replica of endpoint %s failed to start", name)
        reason = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        store.set_status(name, "failed", f"failed: {reason}", error=reason, expect=("starting", "running", "idle"))
        sys.exit(STARTUP_FAILURE)


def _build(ws: Any, store: Any, endpoint: Any) -> Any:
    if any(m.get("kind") == "tabular" for m in endpoint.models):
        from runtimes.serving.endpoints import tabular_app

        return tabular_app.build(ws, store, endpoint)
    from runtimes.models.refs import ServedModel
    from runtimes.serving.endpoints.deploy import endpoint_dir
    from runtimes.serving.endpoints.key_rotation import rotation_stamp
    from runtimes.serving.endpoints.openai_api import EndpointSettings, create_app
    from runtimes.serving.endpoints.replica_load import LoadGate, ReplicaLoad, replicas_dir, start_writer
    from runtimes.serving.endpoints.scaling import Scaling
    from runtimes.serving.engines.pool import EnginePool

    pid = os.getpid()
    served = [ServedModel(id=m["id"], base=m["base"], base_ref=m["base_ref"], adapter=m["adapter"],
                          training_sql=m.get("training_sql")) for m in endpoint.models]
    serverless = endpoint.mode == "serverless"

    def on_event(kind: str, message: str, data: dict[str, Any]) -> None:
        store.add_event(endpoint.name, kind, f"{message} (replica {pid})", {**data, "replica": pid})
        if not serverless:
            return  # a real-time endpoint is `running` once it listens
        if kind == "loaded":
            store.set_status(endpoint.name, "running", "running: a model is loaded", expect=("idle", "starting"))
        elif kind == "unloaded" and not data.get("loaded"):
            store.set_status(endpoint.name, "idle", "idle: scaled to zero, loads again on the next request",
                             expect=("running",))

    pool = EnginePool(served, serverless=serverless, idle_timeout_s=endpoint.idle_timeout,
                      engine_options=endpoint.engine, aliases=_aliases(endpoint.models), on_event=on_event)
    if serverless:
        _warm_code(sorted({s.base for s in served}), any(s.adapter for s in served))
    else:
        pool.load_all()
    hashes = tuple(h for h in (endpoint.key_hash, endpoint.local_key_hash) if h)
    scaling = Scaling.of(endpoint.scaling)
    load = ReplicaLoad(scaling.max_concurrency)
    app = create_app(pool, EndpointSettings(name=endpoint.name, key_hashes=hashes, workspace=ws,
                                            capture_rate=endpoint.capture_rate, mode=endpoint.mode,
                                            owner=endpoint.owner, owner_key_hash=endpoint.key_hash,
                                            rotation_stamp=rotation_stamp(ws, endpoint.name)),
                     admission=[(LoadGate, {"load": load})])
    folder = replicas_dir(endpoint_dir(ws, endpoint.name))
    started_at = time.time()
    start_writer(folder, load, lambda: {"started_at": started_at, "loaded": pool.loaded(),
                                        "adapters": pool.loaded_adapters()})

    @app.get("/v1/lathe/status")
    def status() -> dict[str, Any]:
        """The endpoint as its replicas report it (behind the API key like every `/v1/` route)."""
        from runtimes.serving.endpoints.replica_load import read_all
        from runtimes.serving.endpoints.supervisor import live_replica_pids

        current = store.get(endpoint.name)
        replicas = read_all(folder, live_replica_pids(current.pid))
        events = store.events(endpoint.name, kinds=("loaded", "unloaded", "adapter_loaded", "adapter_unloaded",
                                                    "scaled_up", "scaled_down", "replica_replaced"))
        return {"endpoint": endpoint.name, "mode": endpoint.mode, "status": current.status,
                "models": pool.ids(), "scaling": scaling.model_dump(),
                "queue_depth": sum(r["in_flight"] for r in replicas), "replicas": replicas,
                "this_replica": {"pid": pid, "loaded": pool.loaded(), "adapters": pool.loaded_adapters(),
                                 "tensor_bytes": _tensor_bytes(), **load.snapshot()},
                "events": [{"at": e.at, "kind": e.kind, "message": e.message, "data": e.data}
                           for e in events[-EVENTS_SHOWN:]]}

    log.info("replica %s of endpoint %s serving %s", pid, endpoint.name, ", ".join(pool.ids()))
    return app


def _tensor_bytes() -> int:
    """Bytes held by live torch tensors in this process: a serverless replica scaled to zero holds none."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    import warnings

    gc.collect()
    with warnings.catch_warnings():  # an isinstance check touches deprecated module proxies among the objects
        warnings.simplefilter("ignore")
        return sum(o.numel() * o.element_size() for o in gc.get_objects() if isinstance(o, torch.Tensor))


def _die_with_parent() -> None:
    """A replica never outlives its supervisor, even one killed outright (it would hold the port)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the supervisor died before the line above
        os._exit(1)


def _aliases(models: list[dict[str, Any]]) -> dict[str, str]:
    """Other names a request may use: the reference as deployed (`tickets-sft`, `tickets-sft@approved`) and a
    registered name without its version when the endpoint serves only one version of it."""
    names: dict[str, list[str]] = {}
    for m in models:
        names.setdefault(m["id"].partition("@")[0], []).append(m["id"])
    found = {name: ids[0] for name, ids in names.items() if len(ids) == 1}
    found.update({m["ref"]: m["id"] for m in models})
    return found


def _warm_code(bases: list[str], adapters: bool) -> None:
    """Import the code a first load runs (the bases' transformers model classes, their tokenizers, generation,
    PEFT), so that a serverless cold start is the model's load and first token, not Python imports. The process
    stays up while scaled to zero; no weights are read here."""
    import transformers.generation.utils  # noqa: F401
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    import runtimes.models.sources  # noqa: F401
    import runtimes.serving.engines.transformers_engine  # noqa: F401

    for base in bases:
        try:
            MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(base))]  # imports modeling_<arch>
            AutoTokenizer.from_pretrained(base)
        except Exception as e:  # the first request's load reports a real problem with its own message
            log.warning("could not warm the code for %s: %s", base, e)
    if adapters:
        import peft  # noqa: F401
        from peft import PeftModel  # noqa: F401

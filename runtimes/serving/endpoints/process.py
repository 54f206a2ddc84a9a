"""One endpoint's process: `python -m runtimes.serving.endpoints.process WORKSPACE NAME`. Binds its port on the
endpoint's host (loopback by default), loads its models (real-time) or waits for the first request
(serverless), serves the OpenAI-compatible API with uvicorn, and records its status and events as it goes.

It serves only what the endpoint's stored row says (resolved and checked at deploy); it never reads the registry,
so a start is quick. SIGTERM stops it cleanly (`stopped`); any failure ends it `failed` with the reason.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

from core.offline import apply_offline_env

log = logging.getLogger("lathe.endpoint")


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
        store.set_status(endpoint.name, "failed", f"failed: {reason}", error=reason)
        return 1
    store.set_status(endpoint.name, "stopped", "stopped", expect=("starting", "running", "idle"))
    return 0


def serve(ws: Any, store: Any, endpoint: Any) -> None:
    import uvicorn

    from runtimes.serving.engines.pool import EnginePool
    from runtimes.models.refs import ServedModel
    from runtimes.serving.endpoints.key_rotation import rotation_stamp
    from runtimes.serving.endpoints.openai_api import EndpointSettings, create_app

    sock = _bind(endpoint.host, endpoint.fixed_port or 0)
    port = sock.getsockname()[1]
    store.set_status(endpoint.name, "starting", f"starting on {endpoint.host}:{port} (pid {os.getpid()})",
                     port=port, pid=os.getpid(), started_at=time.time())
    served = [ServedModel(id=m["id"], base=m["base"], base_ref=m["base_ref"], adapter=m["adapter"],
                          training_sql=m.get("training_sql")) for m in endpoint.models]
    serverless = endpoint.mode == "serverless"

    def on_event(kind: str, message: str, data: dict[str, Any]) -> None:
        store.add_event(endpoint.name, kind, message, data)
        if not serverless:
            return  # a real-time endpoint is `running` once it listens
        if kind == "loaded":
            store.set_status(endpoint.name, "running", "running: a model is loaded", expect=("idle", "starting"))
        elif kind == "unloaded" and not data.get("loaded"):
            store.set_status(endpoint.name, "idle", "idle: scaled to zero, loads again on the next request",
                             expect=("running",))

    pool = EnginePool(served, serverless=serverless, idle_timeout_s=endpoint.idle_timeout,
                      engine_options=endpoint.engine, aliases=_aliases(endpoint.models),
                      on_event=on_event)
    if serverless:
        _warm_code(sorted({s.base for s in served}), any(s.adapter for s in served))
    else:
        pool.load_all()
    hashes = tuple(h for h in (endpoint.key_hash, endpoint.local_key_hash) if h)
    app = create_app(pool, EndpointSettings(name=endpoint.name, key_hashes=hashes, workspace=ws,
                                            capture_rate=endpoint.capture_rate, mode=endpoint.mode,
                                            owner=endpoint.owner, owner_key_hash=endpoint.key_hash,
                                            rotation_stamp=rotation_stamp(ws, endpoint.name)))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=5))
    # uvicorn re-raises the signal that stopped it with the handler found at its start: a no-op here, so a
    # stop ends in `main`, which records it, rather than killing the process at once.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    sock.listen(128)  # connections wait in the backlog from now on, never refused while uvicorn starts
    ready = "idle: loads its models on the first request" if serverless else "running"
    store.set_status(endpoint.name, "idle" if serverless else "running", ready, expect=("starting",))
    log.info("endpoint %s serving %s on http://%s:%s/v1", endpoint.name, ", ".join(pool.ids()), endpoint.host, port)
    server.run(sockets=[sock])
    if not server.started:
        raise RuntimeError("uvicorn did not start (see the log above)")


def _aliases(models: list[dict[str, Any]]) -> dict[str, str]:
    """Other names a request may use: the reference as deployed (`tickets-sft`, `tickets-sft@approved`) and a
    registered name without its version when the endpoint serves only one version of it."""
    names: dict[str, list[str]] = {}
    for m in models:
        names.setdefault(m["id"].partition("@")[0], []).append(m["id"])
    found = {name: ids[0] for name, ids in names.items() if len(ids) == 1}
    found.update({m["ref"]: m["id"] for m in models})
    return found


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


def _warm_code(bases: list[str], adapters: bool) -> None:
    """Import the code a first load runs (the bases' transformers model classes, their tokenizers, generation,
    PEFT), so that a serverless cold start is the model's load and first token, not Python imports. The process
    stays up while scaled to zero; no weights are read here."""
    import transformers.generation.utils  # noqa: F401
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    import runtimes.serving.engines.transformers_engine  # noqa: F401
    import runtimes.models.sources  # noqa: F401

    for base in bases:
        try:
            MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(base))]  # imports modeling_<arch>
            AutoTokenizer.from_pretrained(base)
        except Exception as e:  # the first request's load reports a real problem with its own message
            log.warning("could not warm the code for %s: %s", base, e)
    if adapters:
        import peft  # noqa: F401
        from peft import PeftModel  # noqa: F401


if __name__ == "__main__":
    sys.exit(main())

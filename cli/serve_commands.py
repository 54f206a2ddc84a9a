"""`lathe deploy`, `lathe endpoints …` and `lathe invoke`: serve registered model versions behind an
OpenAI-compatible endpoint, look after the endpoints, and call one with the `openai` client.

Serving libraries are imported only when a command runs, so `lathe --help` stays fast.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from cli.context import command, print_json, print_table, workspace

endpoints_app = typer.Typer(help="Endpoints: list, show, start, stop, delete, rotate-key.", no_args_is_help=True)
WORKSPACE_KEY = "workspace (no user)"  # whom the key of an endpoint deployed by no workspace user belongs to


def register(app: typer.Typer) -> None:
    app.command("deploy")(command(deploy))
    app.command("invoke")(command(invoke))
    app.add_typer(endpoints_app, name="endpoints")


def deploy(
    models: list[str] = typer.Argument(..., help="What to serve: NAME (latest approved), NAME@N, NAME@approved, "
                                       "NAME@latest or a workspace base model; several share one endpoint."),
    name: str | None = typer.Option(None, "--name", "-n", help="Endpoint name (default: the first model's name)."),
    serverless: bool = typer.Option(False, "--serverless", help="Load on the first request and unload after "
                                    "--idle-timeout seconds without requests (scale to zero)."),
    idle_timeout: float = typer.Option(300.0, "--idle-timeout", help="Serverless: seconds idle before unloading."),
    port: int | None = typer.Option(None, "--port", "-p", help="A fixed port (default: any free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Where to listen (loopback unless you say otherwise)."),
    max_adapters: int = typer.Option(4, "--max-adapters", help="LoRA adapters kept loaded per base model."),
    capture_rate: float = typer.Option(1.0, "--capture-rate", help="Share of requests captured for monitoring."),
    quantize: str = typer.Option("none", "--quantize", help="none, int8 (CPU or GPU) or int4 (GPU only)."),
    backend: str = typer.Option("transformers", "--backend", help="transformers (default), or vllm where installed."),
    speculative: str | None = typer.Option(None, "--speculative", help="Speculative decoding of greedy requests: "
                                           "prompt-lookup (candidates copied from the prompt) or draft:MODEL (a "
                                           "smaller model sharing the tokenizer)."),
    min_replicas: int | None = typer.Option(None, "--min-replicas", help="Replica processes always running (1)."),
    max_replicas: int | None = typer.Option(None, "--max-replicas", help="The most replicas under load "
                                            "(default: --min-replicas)."),
    max_concurrency: int | None = typer.Option(None, "--max-concurrency", help="Requests one replica serves at "
                                               "once; more get 429 with Retry-After (default: no limit)."),
    scale_up_queue: float | None = typer.Option(None, "--scale-up-queue", help="Requests in flight per replica "
                                                "above which one more starts (2)."),
    target_p95_ms: float | None = typer.Option(None, "--target-p95-ms", help="p95 latency above which one more "
                                               "replica starts (default: latency does not scale)."),
    scale_down_idle: float | None = typer.Option(None, "--scale-down-idle", help="Seconds without requests "
                                                 "before one replica above the minimum stops (60)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Deploy model versions behind an OpenAI-compatible endpoint (prints its API key once). The key belongs to
    the workspace user at this machine (their login name), or to the workspace when they are no user."""
    from core.principal import Principal
    from runtimes.serving.endpoints.deploy import deploy as run_deploy

    d = run_deploy(workspace(), models, name=name, mode="serverless" if serverless else "realtime",
                   idle_timeout=idle_timeout, host=host, port=port, max_adapters=max_adapters,
                   capture_rate=capture_rate, quantize=quantize, backend=backend,
                   speculation=_speculation(speculative), owner=Principal.local_admin().name,
                   scaling={"min_replicas": min_replicas, "max_replicas": max_replicas,
                            "max_concurrency": max_concurrency, "scale_up_queue": scale_up_queue,
                            "target_p95_ms": target_p95_ms, "scale_down_idle_s": scale_down_idle})
    e = d.endpoint
    if as_json:
        print_json({**e.to_json(), "api_key": d.api_key, "created": d.created})
        return
    typer.echo(f"endpoint `{e.name}` {e.status} at {e.url} ({e.mode}), serving {', '.join(e.model_ids)}")
    if d.api_key:
        typer.echo(f"API key (shown once, keep it): {d.api_key}")
        typer.echo(f"it belongs to {_key_owner(e)}" + (f"; disabling `{e.owner}` revokes it" if e.owner else ""))
    if d.api_key and e.models[0].get("kind") == "tabular":  # a table model speaks MLflow's scoring protocol
        typer.echo(f"call it:\n  curl {e.base_url}/invocations -H 'Authorization: Bearer <the key>' "
                   "-H 'Content-Type: application/json' -d '{\"dataframe_records\": [{…}]}'")
    elif d.api_key:
        typer.echo("call it:\n"
                   "  from openai import OpenAI\n"
                   f"  client = OpenAI(base_url=\"{e.url}\", api_key=\"<the key>\")\n"
                   f"  client.chat.completions.create(model=\"{e.model_ids[0]}\", "
                   "messages=[{\"role\": \"user\", \"content\": \"Hello\"}])")
    else:
        typer.echo("it already existed: its API key is unchanged")


PROMPT_LOOKUP_TOKENS = 10  # candidates per round copied from the prompt


def _speculation(flag: str | None) -> dict[str, Any] | None:
    """`--speculative` as the engine's speculation settings."""
    from core.errors import UserError

    if flag is None:
        return None
    kind, _, model = flag.strip().partition(":")
    if kind == "prompt-lookup" and not model:
        return {"prompt_lookup_tokens": PROMPT_LOOKUP_TOKENS}
    if kind == "draft" and model.strip():
        return {"draft": model.strip()}
    raise UserError(f"--speculative {flag!r} is not a speculation mode: use `prompt-lookup` or `draft:MODEL` "
                    "(MODEL a folder, a workspace model or a hub id of a smaller model with the same tokenizer)")


def invoke(
    endpoint: str = typer.Argument(..., help="The endpoint's name."),
    text: str = typer.Argument(..., help="The message to send."),
    model: str | None = typer.Option(None, "--model", "-m", help="Which served model (default: the first)."),
    stream: bool = typer.Option(False, "--stream", help="Print the reply as it is generated."),
    max_tokens: int = typer.Option(128, "--max-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, max=2.0),
    system: str | None = typer.Option(None, "--system", help="A system message."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="LATHE_API_KEY",
                                       help="The endpoint's key (default: the workspace's local key)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Send one chat message to an endpoint with the `openai` client and print the reply."""
    from runtimes.serving.endpoints.client import invoke as run_invoke

    def piece(p: str) -> None:
        typer.echo(p, nl=False)

    out = run_invoke(workspace(), endpoint, text, model=model, system=system, max_tokens=max_tokens,
                     temperature=temperature, api_key=api_key, on_piece=piece if stream and not as_json else None)
    if as_json:
        print_json(out.to_json())
        return
    if stream:
        typer.echo("")
    else:
        typer.echo(out.text)
    cold = f", cold start {out.cold_start_ms:.0f} ms" if out.cold_start_ms is not None else ""
    tokens = out.usage.get("completion_tokens", "?")
    typer.echo(f"[{out.model}: {tokens} tokens, {out.finish_reason}, {out.latency_ms:.0f} ms{cold}]", err=True)


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _key_owner(e) -> str:
    return f"`{e.owner}`" if e.owner else f"the {WORKSPACE_KEY}"


def _replicas(e) -> str:
    from runtimes.serving.endpoints.scaling import Scaling
    from runtimes.serving.endpoints.supervisor import live_replica_pids

    s = Scaling.of(e.scaling)
    limit = f", at most {s.max_concurrency} requests each" if s.max_concurrency else ""
    running = f"{len(live_replica_pids(e.pid))} running; " if e.status in ("starting", "running", "idle") else ""
    return f"{running}min {s.min_replicas}, max {s.max_replicas}{limit}"


def _last_cold_start(e) -> str:
    return f"{e.cold_starts[-1]['cold_start_ms']:.0f} ms" if e.cold_starts else ""


@endpoints_app.command("list")
@command
def endpoints_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """All endpoints with their status (a dead process shows as failed, never running)."""
    from runtimes.serving.endpoints.deploy import list_endpoints

    found = list_endpoints(workspace())
    if as_json:
        print_json([e.to_json() for e in found])
        return
    print_table(["endpoint", "status", "mode", "url", "models", "key belongs to", "last cold start", "created"],
                [[e.name, e.status, e.mode, e.url if e.status in ("running", "idle") else "",
                  ", ".join(e.model_ids), e.owner or WORKSPACE_KEY, _last_cold_start(e), _when(e.created_at)]
                 for e in found])


@endpoints_app.command("show")
@command
def endpoints_show(name: str, events: int = typer.Option(10, "--events", help="How many recent events to show."),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """One endpoint: models, settings, status, cold starts and recent events."""
    from runtimes.serving.endpoints.store import EndpointStore
    from runtimes.serving.endpoints.deploy import get_endpoint

    ws = workspace()
    e = get_endpoint(ws, name)
    recent = EndpointStore(ws).events(name)[-events:] if events > 0 else []
    if as_json:
        print_json({**e.to_json(), "events": [ev.__dict__ for ev in recent]})
        return
    rows = [["status", e.status + (f" ({e.error})" if e.error else "")], ["mode", e.mode], ["url", e.url or ""],
            ["pid", e.pid or ""], ["created", _when(e.created_at)], ["capture rate", e.capture_rate],
            ["key belongs to", e.owner or WORKSPACE_KEY], ["replicas", _replicas(e)]]
    if e.mode == "serverless":
        rows.append(["idle timeout", f"{e.idle_timeout:g} s"])
        if e.cold_starts:
            ms = sorted(c["cold_start_ms"] for c in e.cold_starts)
            rows.append(["cold starts", f"{len(ms)}; last {e.cold_starts[-1]['cold_start_ms']:.0f} ms, "
                                        f"median {ms[len(ms) // 2]:.0f} ms, max {ms[-1]:.0f} ms"])
    rows += [[f"model {m['id']}", m["adapter"] and f"adapter over {m['base_ref']}" or f"base {m['base']}"]
             for m in e.models]
    print_table(["field", "value"], rows, title=e.name)
    for ev in recent:
        typer.echo(f"{_when(ev.at)}  {ev.kind:<10} {ev.message}")


@endpoints_app.command("start")
@command
def endpoints_start(
    name: str,
    min_replicas: int | None = typer.Option(None, "--min-replicas", help="Replica processes always running."),
    max_replicas: int | None = typer.Option(None, "--max-replicas", help="The most replicas under load."),
) -> None:
    """Start a stopped (or failed) endpoint again, with its models, key and URL."""
    from runtimes.serving.endpoints.deploy import start

    e = start(workspace(), name, scaling={"min_replicas": min_replicas, "max_replicas": max_replicas})
    typer.echo(f"endpoint `{e.name}` {e.status} at {e.url}")


@endpoints_app.command("status")
@command
def endpoints_status(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A running endpoint as its replicas report it: replicas, queue depth, loaded models and adapters, and
    recent scaling and loading events (asked of the endpoint with the workspace's key)."""
    from runtimes.serving.endpoints.client import lathe_status

    st = lathe_status(workspace(), name)
    if as_json:
        print_json(st)
        return
    s = st["scaling"]
    typer.echo(f"endpoint `{name}` {st['status']}: {len(st['replicas'])} replica(s) (min {s['min_replicas']}, "
               f"max {s['max_replicas']}), {st['queue_depth']} request(s) in flight")
    print_table(["replica", "in flight", "served", "refused", "p95 ms", "loaded", "adapters"],
                [[r["pid"], r["in_flight"], r["served"], r["refused"], r["p95_ms"] or "", ", ".join(r["loaded"]),
                  ", ".join(m for ms in r["adapters"].values() for m in ms)] for r in st["replicas"]])
    for ev in st["events"]:
        typer.echo(f"{_when(ev['at'])}  {ev['kind']:<16} {ev['message']}")


@endpoints_app.command("stop")
@command
def endpoints_stop(name: str) -> None:
    """Stop an endpoint's process; it stays listed and can be started again."""
    from runtimes.serving.endpoints.deploy import stop

    e = stop(workspace(), name)
    typer.echo(f"endpoint `{e.name}` {e.status}")


@endpoints_app.command("delete")
@command
def endpoints_delete(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Stop and remove an endpoint (its key stops working)."""
    from runtimes.serving.endpoints.deploy import delete

    if not yes:
        typer.confirm(f"delete endpoint `{name}`? Its API key stops working", abort=True)
    delete(workspace(), name)
    typer.echo(f"endpoint `{name}` deleted")


@endpoints_app.command("rotate-key")
@command
def endpoints_rotate_key(name: str, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Give an endpoint a new API key (printed once); the old key stops working at once, also while it runs.
    An admin, or the user the key belongs to, may."""
    from core.principal import Principal
    from runtimes.serving.endpoints.key_rotation import rotate_key

    key = rotate_key(workspace(), name, Principal.local_admin())
    if as_json:
        print_json({"name": name, "api_key": key})
        return
    typer.echo(f"new API key of `{name}` (shown once, keep it): {key}")
    typer.echo("the old key no longer works")

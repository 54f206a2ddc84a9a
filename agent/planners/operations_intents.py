"""The offline planner's operations: deploy a registered model (real-time or serverless), list, call and stop
endpoints, batch predictions over a table, async requests, "how is the ticket endpoint doing this week?", "alert
me when response length drifts" and "any alerts?".

It proposes plans only: deploying, stopping, batches and async work are steps that wait for approval; it never
runs a tool itself, and says what it could not tell (which model, which endpoint) instead of guessing.
"""
from __future__ import annotations

import re
from typing import Any

from core.workspace import Workspace
from agent.planners.train_intents import CHURN_WORDS
from agent.planners.base import PlannerReply, PlanRequest
from agent.state import Plan, Step
from tools.finetune import TECHNIQUES

# Phrases people use for each monitored feature, longest first within a feature.
_FEATURES = {
    "response_length": ("response length", "reply length", "answer length", "output length", "length of responses",
                        "length of replies", "length of answers", "response size"),
    "prompt_length": ("prompt length", "question length", "input length", "request length", "length of prompts"),
    "latency_ms": ("latency", "response time", "slow"),
    "language": ("language",),
    "topic": ("topic", "subject"),
    "completion_tokens": ("completion tokens", "output tokens", "tokens"),
    "judge_score": ("judge score", "quality score", "judge"),
}
_PERIODS = (("hour", "1h"), ("today", "1d"), ("day", "1d"), ("24 hours", "1d"), ("month", "30d"),
            ("30 days", "30d"), ("week", "7d"), ("7 days", "7d"))
_PUNCTUATION = ",.;:!?\"'`()[]{}"


def plan_operations_turn(ws: Workspace, request: PlanRequest) -> PlannerReply | None:
    """A reply when the message is about endpoints, batch or async inference, monitors or alerts; else None."""
    if request.route == "sql":
        return None
    text = " " + " ".join(_words(request.text)) + " "
    words = set(text.split())
    for read in (_decide_version, _monitor_rule, _alerts, _report, _deploy, _stop, _list_endpoints, _batch_status,
                 _batch, _async_status, _async_submit, _invoke):
        reply = read(ws, request.text, text, words)
        if reply is not None:
            return reply
    return None


# ---- registered versions ------------------------------------------------------------------------
def _decide_version(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    decision = "approved" if {"approve", "approved"} & words else "rejected" if "reject" in words else None
    if decision is None or "deploy" in words or ("version" not in words and not re.search(r"@\d+", raw)):
        return None
    model = _registered_model(ws, words | set(re.findall(r"@(\d+)", raw)) | ({"version"} if "@" in raw else set()))
    if isinstance(model, PlannerReply):
        return model
    name, _, version = model.partition("@")
    if not version:
        return PlannerReply(text=f"Which version of `{name}`? Say e.g. \"approve {name} version 1\".")
    verb = "approve" if decision == "approved" else "reject"
    step = Step(id="s1", tool="approve_model_version", args={"name": name, "version": version, "decision": decision,
                                                              "note": raw.strip()},
                title=f"{verb.capitalize()} `{name}` version {version}")
    return PlannerReply(plan=Plan(steps=[step], summary=(
        f"I will record that `{name}` version {version} is {decision}; a decision on a model waits for an "
        "approver's approval.")))


# ---- monitoring ---------------------------------------------------------------------------------
def _monitor_rule(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not ({"alert", "notify", "warn"} & words and {"drift", "drifts", "drifting", "shifts"} & words):
        return None
    endpoint = _endpoint(ws, words)
    if isinstance(endpoint, PlannerReply):
        return endpoint
    features = [f for f, phrases in _FEATURES.items() if any(f" {p} " in text for p in phrases)]
    rules = [f"drift:{f}" for f in features] or ["dataset_drift"]
    what = ", ".join(f.replace("_", " ") for f in features) or "the traffic as a whole"
    name = f"{endpoint}-{'-'.join(features) or 'traffic'}-drift"[:60]
    args = {"name": name, "endpoint": endpoint, "rules": rules, "window": "1h", "every": "15m"}
    step = Step(id="s1", tool="create_monitor", args=args, title=f"Watch `{endpoint}` for drift of {what}")
    return PlannerReply(plan=Plan(steps=[step], summary=(
        f"I will create monitor `{name}`: every 15 minutes it compares the last hour of `{endpoint}`'s traffic with "
        f"the hour before (Evidently's default tests) and raises an alert when {what} drifts. It is stored, so it "
        "waits for approval.")))


def _alerts(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not {"alert", "alerts"} & words or {"create", "when", "if"} & words:
        return None
    args: dict[str, Any] = {"since": _period(text) or "7d"}
    named = _named_endpoint(ws, words)
    if named:
        args["endpoint"] = named
    step = Step(id="s1", tool="list_alerts", args=args, title="List the alerts raised")
    return PlannerReply(plan=Plan(steps=[step], summary=f"Listing the alerts of the last {args['since']}."))


def _report(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    asks = ({"doing", "going", "performing", "behaving"} & words and "how" in words) or (
        {"report", "drift", "monitor"} & words and {"endpoint", "traffic"} & words)
    if not asks or not ({"endpoint", "endpoints", "traffic", "model", "serving"} & words or _named_endpoint(ws, words)):
        return None
    endpoint = _endpoint(ws, words)
    if isinstance(endpoint, PlannerReply):
        return endpoint
    period = _period(text) or "7d"
    step = Step(id="s1", tool="endpoint_report", args={"endpoint": endpoint, "period": period},
                title=f"Report on `{endpoint}` over the last {period}")
    return PlannerReply(plan=Plan(steps=[step], summary=(
        f"Reporting on endpoint `{endpoint}` over the last {period}: requests, errors, latency, drift against the "
        "period before, quality where feedback exists.")))


# ---- endpoints ----------------------------------------------------------------------------------
def _deploy(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not {"deploy", "serve", "publish"} & words:
        return None
    model = _registered_model(ws, words)
    if isinstance(model, PlannerReply):
        return model
    mode = "serverless" if {"serverless", "scale-to-zero", "on-demand"} & words else "realtime"
    name = _endpoint_name_for(raw, model)
    args: dict[str, Any] = {"models": [model], "serverless": mode == "serverless"}
    if name:
        args["name"] = name
    shown = f"`{name}`" if name else "an endpoint"
    how = ("serverless: it starts the model on the first request and stops it after it has been idle"
           if mode == "serverless" else "real-time: the model stays loaded")
    step = Step(id="s1", tool="deploy_model", args=args, title=f"Deploy `{model}` ({mode})")
    return PlannerReply(plan=Plan(steps=[step], summary=(
        f"I will deploy `{model}` behind {shown}, an OpenAI-compatible endpoint on this machine, {how}. "
        "Deploying waits for approval.")))


def _stop(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not ({"stop", "shut", "undeploy", "delete", "remove"} & words and {"endpoint", "endpoints"} & words
            or "undeploy" in words):
        return None
    endpoint = _endpoint(ws, words)
    if isinstance(endpoint, PlannerReply):
        return endpoint
    step = Step(id="s1", tool="stop_endpoint", args={"endpoint": endpoint}, title=f"Stop endpoint `{endpoint}`")
    return PlannerReply(plan=Plan(steps=[step], summary=f"I will stop endpoint `{endpoint}`; it waits for approval."))


def _list_endpoints(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not ({"endpoints", "deployments"} & words or ("endpoint" in words and {"which", "what", "list", "show"} & words)):
        return None
    step = Step(id="s1", tool="list_endpoints", title="List the endpoints")
    return PlannerReply(plan=Plan(steps=[step], summary="Listing the endpoints with their models and status."))


def _invoke(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not ({"ask", "call", "invoke", "send", "query"} & words and "endpoint" in words):
        return None
    endpoint = _endpoint(ws, words)
    if isinstance(endpoint, PlannerReply):
        return endpoint
    message = _quoted_or_after_colon(raw)
    if not message:
        return PlannerReply(text=f"What should I send to `{endpoint}`? Put the message in quotes or after a colon, "
                                 f"e.g. ask the {endpoint} endpoint: where is my order?")
    step = Step(id="s1", tool="invoke_endpoint", args={"endpoint": endpoint, "message": message},
                title=f"Ask `{endpoint}`")
    return PlannerReply(plan=Plan(steps=[step], summary=f"Sending the message to endpoint `{endpoint}`."))


# ---- batch and async ----------------------------------------------------------------------------
_TRAINING_WORDS = CHURN_WORDS | {"train", "training", "classifier", "classification", "regression", "regressor"}


def _batch(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    asked = "batch" in words or ({"predict", "predictions"} & words and {"over", "on", "for"} & words)
    if not asked or words & _TRAINING_WORDS:  # "train a classifier on … to predict": a new model, not a batch
        return None
    table = _table(ws, words)
    if table is None:
        return PlannerReply(text="Which table should the model run over? Name a catalog table, e.g. "
                                 "\"run the ticket model over support_tickets\".")
    model = _registered_model(ws, words)
    if isinstance(model, PlannerReply):
        return model
    step = Step(id="s1", tool="run_batch", args={"model": model, "table": table},
                title=f"Predict with `{model}` over `{table}`")
    return PlannerReply(plan=Plan(steps=[step], summary=(
        f"I will run `{model}` over every row of `{table}` and write the predictions to `{table}_predictions`; "
        "it spends compute, so it waits for approval. A crash resumes where it stopped.")))


def _batch_status(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not ("batch" in words and ({"how", "status", "progress", "done", "finished"} & words)):
        return None
    step = Step(id="s1", tool="batch_status", title="Report the latest batch")
    return PlannerReply(plan=Plan(steps=[step], summary="Checking the latest batch."))


def _async_submit(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not ("async" in words or "asynchronous" in words or ("queue" in words and "submit" in words)):
        return None
    model = _named_endpoint(ws, words) or _registered_model(ws, words)
    if isinstance(model, PlannerReply):
        return model
    message = _quoted_or_after_colon(raw)
    if not message:
        return PlannerReply(text="What should the async request say? Put it in quotes or after a colon.")
    step = Step(id="s1", tool="submit_async", args={"target": model, "message": message},
                title=f"Queue a request for `{model}`")
    return PlannerReply(plan=Plan(steps=[step], summary=(
        f"I will queue the request for `{model}`; a worker answers it and the result is kept under its id "
        "(ask \"what is the status of async request ID?\").")))


def _async_status(ws: Workspace, raw: str, text: str, words: set[str]) -> PlannerReply | None:
    if not ({"async", "asynchronous", "queued"} & words and {"status", "result", "results", "done", "answered"} & words):
        return None
    ids = [w for w in text.split() if re.fullmatch(r"(?:[a-z]+-)?[0-9a-f][0-9a-f-]{7,}", w)]
    args = {"request_id": ids[0]} if ids else {}
    step = Step(id="s1", tool="async_status", args=args, title="Check async requests")
    return PlannerReply(plan=Plan(steps=[step], summary="Checking the async request queue."))


# ---- names --------------------------------------------------------------------------------------
def _endpoint(ws: Workspace, words: set[str]) -> str | PlannerReply:
    """The endpoint the words name, or the only one there is; else a question listing them."""
    from tools.deployment_names import endpoint_names

    named = _named_endpoint(ws, words)
    if named:
        return named
    names = endpoint_names(ws)
    if len(names) == 1:
        return names[0]
    if not names:
        return PlannerReply(text="There is no endpoint yet: deploy a model first, e.g. \"deploy the approved "
                                 "ticket model as serverless\".")
    return PlannerReply(text="Which endpoint? " + ", ".join(f"`{n}`" for n in names) + ".")


def _named_endpoint(ws: Workspace, words: set[str]) -> str | None:
    from tools.deployment_names import endpoint_names

    hits = [n for n in endpoint_names(ws) if _names_match(n, words)]
    return hits[0] if len(hits) == 1 else None


def _registered_model(ws: Workspace, words: set[str]) -> str | PlannerReply:
    """The registered model the words describe (by its name or the table it learned from), with `@N` when a
    version is named; else a question listing them."""
    from tools.deployment_names import registered_models

    models = registered_models(ws)  # name → the tables and words of its lineage
    hits = [name for name, about in models.items() if _names_match(name, words) or _names_match(about, words)]
    if len(hits) != 1:
        if not models:
            return PlannerReply(text="There is no registered model yet: fine-tune one first (\"fine-tune a model on "
                                     "support tickets\"), then an approver approves it.")
        listed = ", ".join(f"`{m}`" for m in models)
        return PlannerReply(text=("Which model? " if not hits else "Several models fit: ") + listed + ".")
    versions = [w.lstrip("v") for w in words if re.fullmatch(r"v?\d+", w) and w.lstrip("v") != "0"]
    if "version" in words and versions:
        return f"{hits[0]}@{versions[0]}"
    return hits[0]


def _table(ws: Workspace, words: set[str]) -> str | None:
    from catalog.store import CatalogStore

    tables = CatalogStore(ws).load().tables
    hits = [t for t in tables if t.lower() in words]
    return hits[0] if len(hits) == 1 else None


def _names_match(name: str, words: set[str]) -> bool:
    """`support-tickets` is named by "ticket", "tickets" or "support-tickets"."""
    parts = {p for p in re.split(r"[^a-z0-9]+", name.lower()) if len(p) > 2}
    parts |= {p[:-1] for p in parts if p.endswith("s")}
    stems = words | {w[:-1] for w in words if w.endswith("s")}
    return name.lower() in words or bool(parts & stems - _COMMON)


_COMMON = frozenset({"the", "model", "models", "endpoint", "tiny", *TECHNIQUES, "lora", "base",
                     "and", "for", "with", "this", "that", "week", "doing", "how", "approved", "serverless"})


def _endpoint_name_for(raw: str, model: str) -> str | None:
    m = re.search(r"\b(?:as|called|named)\s+[`\"']?([A-Za-z][\w-]{1,40})[`\"']?\s*(?:endpoint)?\s*$", raw.strip())
    if m and m.group(1).lower() not in ("serverless", "realtime", "real-time"):
        return m.group(1)
    return None


def _period(text: str) -> str | None:
    m = re.search(r"\b(\d+)\s*(hour|day|week)s?\b", text)
    if m:
        return f"{m[1]}{m[2][0]}"
    for phrase, period in _PERIODS:
        if f" {phrase} " in text or f" {phrase}s " in text:
            return period
    return None


def _quoted_or_after_colon(raw: str) -> str:
    m = re.search(r"[\"“]([^\"”]+)[\"”]", raw)
    if m:
        return m.group(1).strip()
    _, colon, rest = raw.partition(":")
    return rest.strip() if colon else ""


def _words(text: str) -> list[str]:
    return [w.strip(_PUNCTUATION).lower() for w in text.split() if w.strip(_PUNCTUATION)]

"""Monitors: what to watch on an endpoint (reference, features, window, schedule, rules), running one, and
running a due one once for its due time (`runtimes/scheduling/` calls it on each monitor's schedule).

A run ingests spooled traffic, compares the window's features with the reference (Evidently's default drift
tests), adds operational, quality and per-group metrics, raises alerts for rules that start firing, writes a
report with plots, and records it all in `state.sqlite`. It never changes served models or the traffic itself.
"""
from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import UserError, validate_input
from core.workspace import Workspace
from runtimes.monitoring.features import FEATURES, TRAFFIC_ONLY
from runtimes.monitoring.monitor_store import Alert, MonitorRow, MonitorStore

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
QUALITY_METRICS = ("accuracy", "mean_score")


def duration_s(text: str) -> float:
    """`30m`, `1h`, `7d`, `2w` in seconds."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"`{text}` is not a duration: write a number and a unit, e.g. 30m, 1h, 7d or 2w")
    return float(m[1]) * _UNITS[m[2]]


def _a_minute_or_more(v: str) -> str:
    if duration_s(v) < 60:
        raise ValueError("at least one minute (1m)")
    return v


# A monitor's window and period: a duration of at least a minute.
Duration = Annotated[str, AfterValidator(_a_minute_or_more)]


class Rule(BaseModel):
    """One condition that raises an alert: a feature drifts, the data set drifts, the window violates its
    data-quality constraints, p95 latency or the error rate goes above a value, or a quality metric (from
    feedback) goes below one."""
    model_config = ConfigDict(extra="forbid")

    kind: Literal["feature_drift", "dataset_drift", "data_quality", "latency_p95_above", "error_rate_above",
                  "quality_below", "bias_drift"]
    feature: str | None = Field(None, description="feature_drift: the feature, e.g. response_length")
    metric: Literal["accuracy", "mean_score"] | None = Field(None, description="quality_below: the metric")
    value: float | None = Field(None, description="the limit: milliseconds, a share (0..1) or a quality value")

    @model_validator(mode="after")
    def _complete(self) -> "Rule":
        if self.kind in ("feature_drift", "bias_drift"):  # the monitor checks it names a column it tests
            if not self.feature:
                raise ValueError(f"a {self.kind.replace('_', ' ')} rule names a column, e.g. drift:response_length")
        elif self.kind not in ("dataset_drift", "data_quality") and self.value is None:
            raise ValueError(f"the rule `{self.kind}` needs a value (the limit)")
        if self.kind == "quality_below" and self.metric is None:
            raise ValueError("a quality rule names its metric: accuracy or mean_score")
        if self.kind == "error_rate_above" and not 0 <= (self.value or 0) <= 1:
            raise ValueError("an error-rate limit is a share from 0 to 1, e.g. 0.05")
        return self

    @classmethod
    def parse(cls, text: str) -> "Rule":
        """From a short form: `drift:response_length`, `dataset_drift`, `p95_latency>2000`, `error_rate>0.05`,
        `accuracy<0.8`, `mean_score<0.6`."""
        t = text.strip().lower().replace(" ", "")
        if t in ("dataset_drift", "datasetdrift", "drift"):
            return cls(kind="dataset_drift")
        if t in ("data_quality", "dataquality"):
            return cls(kind="data_quality")
        bias = re.fullmatch(r"bias:([a-z0-9_]+)(?:>(\d+(?:\.\d+)?))?", t)
        if bias:  # a table model's groups: bias:segment, bias:segment>0.2
            return cls(kind="bias_drift", feature=bias[1], value=float(bias[2]) if bias[2] else None)
        if t.startswith("drift:") or t.endswith("_drift"):
            feature = t.removeprefix("drift:").removesuffix("_drift")
            return validate_input(cls, {"kind": "feature_drift", "feature": feature}, f"rule `{text}`")
        m = re.fullmatch(r"(p95_latency|latency_p95|error_rate|accuracy|mean_score)([<>])(-?\d+(?:\.\d+)?)(ms)?", t)
        if m:
            name, op, value = m[1], m[2], float(m[3])
            expected = "<" if name in QUALITY_METRICS else ">"
            if op != expected:
                raise UserError(f"rule `{text}`: {name} alerts when it goes {'below' if expected == '<' else 'above'} "
                                f"a value: write {name}{expected}{m[3]}")
            if name in QUALITY_METRICS:
                return validate_input(cls, {"kind": "quality_below", "metric": name, "value": value}, f"rule `{text}`")
            kind = "latency_p95_above" if "latency" in name else "error_rate_above"
            return validate_input(cls, {"kind": kind, "value": value}, f"rule `{text}`")
        raise UserError(f"`{text}` is not a rule; write one of: drift:FEATURE (e.g. drift:response_length), "
                        "dataset_drift, data_quality, p95_latency>MS, error_rate>SHARE, accuracy<VALUE, mean_score<VALUE")

    def text(self) -> str:
        if self.kind == "feature_drift":
            return f"drift of {self.feature}"
        if self.kind == "dataset_drift":
            return "dataset drift"
        if self.kind == "data_quality":
            return "data-quality violations"
        if self.kind == "bias_drift":
            return f"bias drift by {self.feature}"
        if self.kind == "latency_p95_above":
            return f"p95 latency above {self.value:g} ms"
        if self.kind == "error_rate_above":
            return f"error rate above {self.value:.1%}"
        return f"{self.metric} below {self.value:g}"


class JudgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, description="a LiteLLM model name, e.g. openai/gpt-4o-mini or ollama/llama3")
    rubric: str = Field("helpfulness", description="a built-in rubric name, a .jinja file or rubric text")
    api_base: str | None = None


class MonitorSpec(BaseModel):
    """What a monitor watches. Durations are written like 30m, 1h, 7d."""
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=80)
    endpoint: str = Field(..., min_length=1, description="the endpoint whose traffic is watched (or batch / async)")
    reference: Literal["baseline", "previous_window"] = Field(
        "previous_window", description="baseline: the training data of `model`; previous_window: the window before")
    model: str | None = Field(None, description="for a baseline: the registered version, NAME@VERSION")
    features: list[str] | None = Field(None, description="features to test; default: all that the reference has")
    window: Duration = Field("1d", description="how much recent traffic each run looks at")
    every: Duration = Field("1h", description="how often the monitor runs")
    rules: list[Rule] = Field(default_factory=lambda: [Rule(kind="dataset_drift")])
    min_rows: int = Field(30, ge=1, description="fewer answered requests than this on either side: no drift test")
    judge: JudgeSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError("use letters, digits, `_`, `-` and `.`, starting with a letter or digit (e.g. tickets-drift)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "MonitorSpec":
        if self.reference == "baseline":
            if not self.model:
                raise ValueError("a baseline reference needs the deployed model version: model=NAME@VERSION")
            from runtimes.monitoring.baselines import parse_model_ref

            try:
                parse_model_ref(self.model)
            except UserError as e:
                raise ValueError(str(e)) from None
        for f in self.features or []:
            if f not in FEATURES:
                raise ValueError(f"`{f}` is not a feature; features: {', '.join(FEATURES)}")
            if self.reference == "baseline" and f in TRAFFIC_ONLY:
                raise ValueError(f"`{f}` exists only in served traffic, not in training data: compare it with "
                                 "reference=previous_window")
            if f == "judge_score" and self.judge is None:
                raise ValueError("`judge_score` needs a judge (judge.model)")
        watched = self.tested_features()
        for r in self.rules:
            if r.kind == "bias_drift":
                raise ValueError("bias drift rules are for monitors of table models (kind: tabular)")
            if r.kind == "feature_drift" and r.feature not in watched:
                raise ValueError(f"the rule `{r.text()}` watches `{r.feature}`, which this monitor does not test "
                                 f"({', '.join(watched)})")
        return self

    def tested_features(self) -> list[str]:
        if self.features:
            return list(self.features)
        return [f for f in FEATURES if not (self.reference == "baseline" and f in TRAFFIC_ONLY)
                and not (f == "judge_score" and self.judge is None)]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "MonitorSpec":
        return validate_input(cls, data, "monitor")


@dataclass
class MonitorRun:
    id: str
    monitor: str
    endpoint: str
    status: str  # ok, alert, no_traffic, failed
    summary: dict[str, Any]
    alerts: list[Alert] = field(default_factory=list)
    report_dir: str | None = None

    def describe(self) -> str:
        s = self.summary
        ops = s.get("traffic", {})
        parts = [f"monitor `{self.monitor}` on `{self.endpoint}`: {self.status}",
                 f"{ops.get('requests', 0):,} requests from {s['window']['start']} to {s['window']['end']}"]
        if ops.get("requests"):
            parts.append(f"error rate {ops['error_rate']:.1%}, p95 latency {ops['latency_p95_ms']:.0f} ms")
        drift = s.get("drift")
        if drift:
            parts.append(f"{len(drift['drifted_columns'])} of {len(drift['columns'])} features drifted"
                         + (f" ({', '.join(drift['drifted_columns'])})" if drift["drifted_columns"] else "")
                         + ("; dataset drift" if drift["dataset_drift"] else ""))
        dq = s.get("data_quality")
        if dq:
            parts.append(f"data quality: {len(dq['violations'])} violations over {dq['checked_rows']:,} rows"
                         + "".join(f"\n  {v['feature_name']} ({v['constraint_check_type']}): {v['description']}"
                                   for v in dq["violations"]))
        q = s.get("quality") or {}
        if q.get("labelled"):
            shown = [f"{k} {q[k]:.3g}" for k in QUALITY_METRICS if q.get(k) is not None]
            parts.append(f"quality from {q['labelled']} feedback: " + ", ".join(shown))
        parts += [f"alert: {a.message}" for a in self.alerts]
        parts += s.get("notes", [])
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "monitor": self.monitor, "endpoint": self.endpoint, "status": self.status,
                "summary": self.summary, "alerts": [a.to_json() for a in self.alerts], "report_dir": self.report_dir}


def parse_spec(data: dict[str, Any]) -> Any:
    """A stored or given monitor: of a table model's endpoint (`kind: tabular`) or of an LLM endpoint."""
    if isinstance(data, dict) and data.get("kind") == "tabular":
        from runtimes.monitoring.tabular_monitors import TabularMonitorSpec

        return TabularMonitorSpec.parse(data)
    return MonitorSpec.parse(data)


# ---- creating ------------------------------------------------------------------------------------------
def create_monitor(ws: Workspace, spec: MonitorSpec | dict[str, Any], *, created_by: str | None = None,
                   now: dt.datetime | None = None) -> MonitorRow:
    """Store a monitor; its first run is due at once. A baseline reference checks the model version exists."""
    spec = spec if isinstance(spec, BaseModel) else parse_spec(spec)
    if getattr(spec, "kind", None) == "tabular":
        from runtimes.monitoring.tabular_monitors import check_spec

        check_spec(ws, spec)
    elif spec.reference == "baseline":
        from runtimes.monitoring.baselines import parse_model_ref
        from runtimes.models.registry import get_version

        get_version(ws, *parse_model_ref(spec.model or ""))  # a missing version names the ones that exist
    when = _utc(now).timestamp()
    row = MonitorRow(id=f"mon-{uuid.uuid4().hex[:8]}", name=spec.name, endpoint=spec.endpoint,
                     spec=spec.model_dump(mode="json"), created_at=when, created_by=created_by, enabled=True,
                     next_run_at=when, last_run_at=None, last_status=None)
    MonitorStore(ws).add(row)
    return row


# ---- running -------------------------------------------------------------------------------------------
def run_monitor(ws: Workspace, monitor_id: str, *, now: dt.datetime | None = None,
                reschedule: bool = True) -> MonitorRun:
    """Run one monitor over the window ending `now` (default: the current time); runs of one workspace take
    turns, from any process. `reschedule`: the next run is due one interval after this one (a scheduled run's
    claim has already moved it along the monitor's grid instead)."""
    with _one_run_at_a_time(ws):
        return _run_monitor(ws, monitor_id, now, reschedule)


@contextmanager
def _one_run_at_a_time(ws: Workspace) -> Iterator[None]:
    # A run writes the warehouse (ingest) and reads it; DuckDB lets no other process in while one writes, so runs
    # from two schedulers (or a scheduler and `lathe monitors run`) would fail each other's reads.
    import fcntl

    path = ws.root / "runs" / "monitors" / ".running.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run_monitor(ws: Workspace, monitor_id: str, now: dt.datetime | None, reschedule: bool = True) -> MonitorRun:
    from runtimes.monitoring.evaluation import evaluate
    from runtimes.monitoring.report import write_report

    store = MonitorStore(ws)
    m = store.get(monitor_id)
    end = _utc(now)
    run_id = f"run-{end:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    try:
        spec = parse_spec(m.spec)
    except UserError as e:  # a spec damaged on disk: the failed run says why
        store.start_run(run_id, m.id, "", end.isoformat())
        store.finish_run(run_id, m.id, "failed", None, None, [], error=str(e))
        raise
    start = end - dt.timedelta(seconds=duration_s(spec.window))
    store.start_run(run_id, m.id, start.isoformat(), end.isoformat())
    try:
        notes = _ingest(ws)
        if getattr(spec, "kind", None) == "tabular":
            from runtimes.monitoring.tabular_monitors import evaluate as evaluate_tabular

            result = evaluate_tabular(ws, m.id, spec, start, end)
        else:
            result = evaluate(ws, m.id, spec, start, end)
        result.summary["notes"] = notes + result.summary.get("notes", [])
        fired = _fired_rules(spec, result)
        before = _previously_fired(store, m.id, run_id)
        created = time.time()
        # An alert marks a rule starting to fire; one still firing is kept in the run's summary, not repeated.
        alerts = [Alert(id=f"alert-{uuid.uuid4().hex[:10]}", monitor_id=m.id, run_id=run_id, created_at=created,
                        endpoint=spec.endpoint, **f) for f in fired if f["rule"] not in before]
        result.summary["fired"] = [f["rule"] for f in fired]
        result.summary["alerts"] = [a.id for a in alerts]
        status = "alert" if fired else ("no_traffic" if not result.summary["traffic"]["requests"] else "ok")
        folder = ws.root / "runs" / "monitors" / m.id / run_id
        result.summary["status"] = status
        write_report(folder, spec, result, [a.message for a in alerts])
        store.finish_run(run_id, m.id, status, result.summary, str(folder), alerts)
        if reschedule:
            store.postpone(m.id, end.timestamp() + duration_s(spec.every))
    except BaseException as e:
        store.finish_run(run_id, m.id, "failed", None, None, [], error=f"{type(e).__name__}: {e}")
        raise
    return MonitorRun(id=run_id, monitor=spec.name, endpoint=spec.endpoint, status=status, summary=result.summary,
                      alerts=alerts, report_dir=str(folder))


def endpoint_report(ws: Workspace, endpoint: str, *, period: str = "7d", reference: str = "previous_window",
                    model: str | None = None, now: dt.datetime | None = None) -> MonitorRun:
    """How an endpoint did over the last `period`, against the period before (or a baseline), without a stored
    monitor: nothing is recorded in `state.sqlite`, no alert is raised; the report lands under
    `runs/monitors/adhoc/`."""
    from runtimes.monitoring.evaluation import evaluate
    from runtimes.monitoring.report import write_report

    spec = MonitorSpec.parse({"name": f"{endpoint}-report", "endpoint": endpoint, "reference": reference,
                              "model": model, "window": period, "every": period, "rules": []})
    end = _utc(now)
    start = end - dt.timedelta(seconds=duration_s(period))
    notes = _ingest(ws)
    result = evaluate(ws, "adhoc", spec, start, end)
    result.summary["notes"] = notes + result.summary.get("notes", [])
    drifted = result.drift is not None and bool(result.drift.drifted_columns)
    status = "no_traffic" if not result.summary["traffic"]["requests"] else ("drift" if drifted else "ok")
    result.summary.update(status=status, fired=[], alerts=[])
    folder = ws.root / "runs" / "monitors" / "adhoc" / f"{_slug(endpoint)}-{end:%Y%m%dT%H%M%S}"
    write_report(folder, spec, result, [])
    return MonitorRun(id=folder.name, monitor=spec.name, endpoint=endpoint, status=status, summary=result.summary,
                      report_dir=str(folder))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60] or "endpoint"


def run_due(ws: Workspace, *, now: dt.datetime | None = None) -> list[MonitorRun | str]:
    """Run every enabled monitor whose next run is due; a monitor that fails is reported and the rest still run.
    Returns each run, or the error text of a failed one."""
    when = _utc(now)
    done: list[MonitorRun | str] = []
    for m in MonitorStore(ws).due(when.timestamp()):
        try:
            run = run_if_due(ws, m.id, now=when)
        except Exception as e:  # one broken monitor must not stop the others; its run records the error
            done.append(f"monitor `{m.name}` failed: {e}")
            continue
        if run is not None:
            done.append(run)
    return done


def run_if_due(ws: Workspace, monitor_id: str, *, now: dt.datetime | None = None) -> MonitorRun | None:
    """Run a monitor once for its latest due time, if this caller claims it: None when it is not due, disabled,
    deleted, or another scheduler claimed that due time already. Missed due times coalesce into one run."""
    store = MonitorStore(ws)
    try:
        m = store.get(monitor_id)
    except UserError:
        return None  # deleted since it was scheduled
    try:
        every = duration_s(m.spec.get("every", "1h"))
    except ValueError:
        every = 3600.0  # a damaged schedule still moves on; the run below reports what is wrong
    when = _utc(now)
    if store.claim(m.id, when.timestamp(), every) is None:
        return None
    # The claim is of a due time (so a due time runs once); the run looks at the traffic up to now, so a run that
    # starts late, or the first one of a new monitor, sees what has come in since.
    return run_monitor(ws, m.id, now=when, reschedule=False)


def _ingest(ws: Workspace) -> list[str]:
    from runtimes.monitoring.traffic import ingest

    try:
        moved = ingest(ws)
    except Exception as e:  # duckdb.IOException: another process holds the warehouse; use what is there
        return [f"spooled traffic was not ingested this time ({type(e).__name__}: {str(e).splitlines()[0]}); "
                "the run used the traffic already in the warehouse"]
    return [f"ingested {moved:,} spooled requests"] if moved else []


def _previously_fired(store: MonitorStore, monitor_id: str, run_id: str) -> set[str]:
    for r in store.runs(monitor_id, limit=5):
        if r.id != run_id and r.status not in ("running", "failed") and r.summary is not None:
            return set(r.summary.get("fired", []))
    return set()


def _fired_rules(spec: MonitorSpec, result: Any) -> list[dict[str, Any]]:
    s = result.summary
    drift = result.drift
    out: list[dict[str, Any]] = []
    ref_about = s["reference"]["about"]
    cur_about = f"current: {s['window']['start'][:16]} → {s['window']['end'][:16]}, {s['current_rows']:,} rows"
    for rule in spec.rules:
        if rule.kind == "feature_drift" and drift is not None:
            col = drift.column(rule.feature or "")
            if col is not None and col.drifted:
                compare = col.compare
                change = s["drift_changes"].get(col.column, "")
                out.append(dict(rule=rule.text(), feature=col.column, test=col.test_name, statistic=col.statistic,
                                threshold=col.threshold, message=(
                                    f"{col.column} drifted on `{spec.endpoint}`: {col.test_name} {col.statistic:.3g} "
                                    f"{compare} {col.threshold:g}{'; ' + change if change else ''} "
                                    f"({ref_about}; {cur_about})")))
        elif rule.kind == "dataset_drift" and drift is not None and drift.dataset_drift:
            out.append(dict(rule=rule.text(), feature=None, test="share of drifted features",
                            statistic=drift.share_drifted, threshold=drift.drift_share, message=(
                                f"dataset drift on `{spec.endpoint}`: {len(drift.drifted_columns)} of "
                                f"{len(drift.columns)} features drifted ({drift.share_drifted:.0%} ≥ "
                                f"{drift.drift_share:.0%}): {', '.join(drift.drifted_columns)} ({ref_about}; {cur_about})")))
        elif rule.kind == "data_quality" and (s.get("data_quality") or {}).get("violations"):
            found = s["data_quality"]["violations"]
            out.append(dict(rule=rule.text(), feature=None, test="data-quality constraints", statistic=len(found),
                            threshold=0, message=(
                                f"data quality on `{spec.endpoint}`: {len(found)} violations ("
                                + "; ".join(f"{v['feature_name']}: {v['constraint_check_type']}" for v in found)
                                + f") against constraints {s['data_quality']['constraints']} ({cur_about})")))
        elif rule.kind == "latency_p95_above" and s["traffic"]["requests"]:
            p95 = s["traffic"]["latency_p95_ms"]
            if p95 > (rule.value or 0):
                out.append(dict(rule=rule.text(), feature="latency_ms", test="p95", statistic=p95, threshold=rule.value,
                                message=f"p95 latency on `{spec.endpoint}` is {p95:,.0f} ms, above {rule.value:,.0f} ms "
                                        f"over {s['traffic']['requests']:,} requests ({cur_about})"))
        elif rule.kind == "error_rate_above" and s["traffic"]["requests"]:
            rate = s["traffic"]["error_rate"]
            if rate > (rule.value or 0):
                out.append(dict(rule=rule.text(), feature="status", test="share of 4xx/5xx", statistic=rate,
                                threshold=rule.value, message=f"error rate on `{spec.endpoint}` is {rate:.1%}, above "
                                                               f"{rule.value:.1%} ({s['traffic']['errors']:,} of "
                                                               f"{s['traffic']['requests']:,} requests)"))
        elif rule.kind == "bias_drift":
            from runtimes.monitoring.tabular_monitors import bias_alerts

            out += bias_alerts(spec, rule, s, cur_about)
        elif rule.kind == "quality_below":
            q = s.get("quality") or {}
            value = q.get(rule.metric or "")
            if value is not None and value < (rule.value or 0):
                out.append(dict(rule=rule.text(), feature=rule.metric, test=f"mean over {q['labelled']} feedback",
                                statistic=value, threshold=rule.value,
                                message=f"{rule.metric} on `{spec.endpoint}` is {value:.3g}, below {rule.value:g} "
                                        f"(from feedback on {q['labelled']:,} requests; {cur_about})"))
    return out


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    return now.replace(tzinfo=dt.timezone.utc) if now.tzinfo is None else now.astimezone(dt.timezone.utc)

"""No way around approval: a deploy serves only approved registered versions and workspace base models by name
(never a folder path, a link into a job's weights, a pending or rejected version); a model decision is recorded
as the principal who makes it, never a name given as an argument; an endpoint call beyond a small token budget
spends compute and waits for approval like any other."""
from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from agent.review import ReviewPolicy
from agent.state import Plan, Step
from core.errors import UserError
from core.principal import Principal
from runtimes.serving.endpoints import deploy as endpoints
from runtimes.serving.endpoints.store import EndpointStore
from runtimes.models.refs import resolve_served
from runtimes.models.registry import decide, get_version, register_version
from tests.serving_models import tiny_base
from tests.serving_registry import registered_workspace
from tools.registry import ToolRegistry
from tools.risk import Risk


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("side-doors")
    ws = registered_workspace(root)
    # A rejected version, a job whose weights were never registered, and links from models/ into both.
    runs = ws.root / "runs"
    register_version(ws, "risky-sft", str(runs / "j2" / "model"), None, {"job_id": "j2", "base_model": "tiny-qwen3"})
    decide(ws, "risky-sft", "1", "rejected", "dana")
    tiny_base(runs / "j9" / "model", seed=9)
    tiny_base(root / "elsewhere" / "weights", seed=7)
    base = ws.root / "models" / "base"
    os.symlink(runs / "j2" / "model", base / "pending-link")
    os.symlink(runs / "j9" / "model", base / "unregistered-link")
    os.symlink(root / "elsewhere" / "weights", base / "outside-link")
    return ws


def _nothing_left(ws) -> None:
    assert EndpointStore(ws).list() == []
    assert not (ws.root / "runs" / "endpoints").exists() or not any((ws.root / "runs" / "endpoints").iterdir())


def _refs(ws) -> dict[str, tuple[str, str]]:
    runs = ws.root / "runs"
    return {
        "a pending version's job folder": (str(runs / "j2" / "model"), "is not a model name"),
        "an unregistered job folder": (str(runs / "j9" / "model"), "is not a model name"),
        "a relative job folder": ("runs/j9/model", "is not a model name"),
        "a traversal out of models": ("../runs/j9/model", "is not a model name"),
        "a traversal through models/base": ("models/base/../../runs/j2/model", "is not a model name"),
        "a home path": ("~/weights", "is not a model name"),
        "a bare dot-dot": ("..", "is not a model name"),
        "a link to a pending job's weights": ("pending-link", "leads outside the workspace's models folder"),
        "a link to unregistered weights": ("unregistered-link", "leads outside the workspace's models folder"),
        "a link out of the workspace": ("outside-link", "leads outside the workspace's models folder"),
        "a pending version": ("tickets-sft@2", "`tickets-sft` version 2 is pending, not approved"),
        "the latest version, pending": ("tickets-sft@latest", "version 2 is pending, not approved"),
        "a rejected version": ("risky-sft@1", "`risky-sft` version 1 is rejected, not approved"),
        "a rejected model's default": ("risky-sft", "`risky-sft` has no approved version to deploy"),
        "an unknown name": ("no-such-model", "no model `no-such-model`"),
        "an empty name with a version": ("@1", "no registered model ``"),
        "a path in the version": ("tickets-sft@../2", "is not a version"),
        "a superscript digit as the version": ("tickets-sft@\u00b2", "is not a version"),
    }


CASES = sorted([  # the names of `_refs`, whose values need the workspace
    "a pending version's job folder", "an unregistered job folder", "a relative job folder",
    "a traversal out of models",
    "a traversal through models/base", "a home path", "a bare dot-dot", "a link to a pending job's weights",
    "a link to unregistered weights", "a link out of the workspace", "a pending version",
    "the latest version, pending", "a rejected version", "a rejected model's default", "an unknown name",
    "an empty name with a version", "a path in the version", "a superscript digit as the version"])


@pytest.mark.parametrize("case", CASES)
def test_deploy_refuses_every_side_door_and_starts_nothing(ws, case, monkeypatch):
    ref, says = _refs(ws)[case]
    monkeypatch.chdir(ws.root)  # relative paths would find the job folders from here
    with pytest.raises(UserError) as e:
        endpoints.deploy(ws, [ref])
    assert says in str(e.value)
    assert "\n" not in str(e.value)
    _nothing_left(ws)


@pytest.mark.parametrize("case", ["a pending version's job folder", "a link to a pending job's weights",
                                  "a pending version"])
def test_the_cli_and_the_agent_tool_refuse_the_same(ws, case, monkeypatch):
    from cli.main import app
    from tools.serving import DeployModel, DeployModelArgs

    ref, says = _refs(ws)[case]
    monkeypatch.chdir(ws.root)
    out = CliRunner().invoke(app, ["--workspace", str(ws.root), "deploy", ref])
    assert out.exit_code == 2 and says in " ".join(out.output.split()), out.output
    tool = DeployModel(workspace=ws)
    with pytest.raises(UserError, match=says.replace("`", ".")):
        tool.run_validated(DeployModelArgs(models=[ref]))
    _nothing_left(ws)


def test_a_workspace_base_model_by_name_and_approved_versions_still_resolve(ws):
    base = resolve_served(ws, "tiny-qwen3")
    assert base.adapter is None and base.base == str((ws.root / "models" / "base" / "tiny-qwen3").resolve())
    assert resolve_served(ws, "tickets-sft").id == "tickets-sft@1"
    assert resolve_served(ws, "tickets-sft@1").adapter.endswith("j1/model")


def test_the_deploy_api_has_no_unapproved_switch(ws):
    with pytest.raises(TypeError):
        endpoints.deploy(ws, ["tickets-sft@2"], allow_unapproved=True)  # type: ignore[call-arg]
    _nothing_left(ws)


# ---- approvals take the principal --------------------------------------------------------------------------

def test_the_approval_tool_takes_no_approver_name_and_records_its_principal(workspace, tmp_path):
    from tools.finetune import ApproveModelVersion, ApproveModelVersionArgs

    register_version(workspace, "m-sft", str(tmp_path), None, {"job_id": "j1"})
    for spoof in ({"by": "ceo"}, {"approver": "ceo"}, {"principal": "ceo"}, {"decided_by": "ceo"}):
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            ApproveModelVersionArgs(name="m-sft", version="1", **spoof)
    assert get_version(workspace, "m-sft", 1).approval == "pending"

    viewer = Principal(name="eve", roles={"viewer"})
    with pytest.raises(UserError, match="`eve` may not decide on model versions"):
        ApproveModelVersion(workspace=workspace, principal=viewer).run_validated(
            ApproveModelVersionArgs(name="m-sft", version="1"))
    assert get_version(workspace, "m-sft", 1).approval == "pending"

    approver = Principal(name="dana", roles={"approver"})
    ApproveModelVersion(workspace=workspace, principal=approver).run_validated(
        ApproveModelVersionArgs(name="m-sft", version="1", note="looks right"))
    assert get_version(workspace, "m-sft", 1).tags["lathe.decided_by"] == "dana"


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--by", "ceo"], ["--by=ceo"], ["--by", ""], ["--note", "ok", "--by", "dana"]])
def test_the_cli_refuses_a_typed_in_approver_for_approve_and_reject(workspace, tmp_path, argv):
    from cli.main import app

    register_version(workspace, "m-sft", str(tmp_path), None, {"job_id": "j1"})
    for verb in ("approve", "reject"):
        out = CliRunner().invoke(app, ["--workspace", str(workspace.root), "models", verb, "m-sft", "1", *argv])
        assert out.exit_code == 2 and "--by is not taken" in out.output, out.output
    assert get_version(workspace, "m-sft", 1).approval == "pending"


# ---- endpoint calls that spend compute ---------------------------------------------------------------------

def _invoke_step(**args) -> Step:
    plan = Plan(steps=[Step(id="ask", tool="invoke_endpoint", args={"endpoint": "tickets", **args})])
    return plan.validated(ToolRegistry.discover()).steps[0]


@pytest.mark.parametrize(("args", "risk"), [
    ({"message": "hi"}, Risk.read),
    ({"message": "hi", "max_tokens": 256}, Risk.read),
    ({"message": "hi", "max_tokens": 257}, Risk.compute),
    ({"message": "hi", "max_tokens": 4096}, Risk.compute),
    ({"message": "x" * 4000}, Risk.read),
    ({"message": "x" * 4001}, Risk.compute),
    ({"message": "summarise " * 2000, "max_tokens": 1}, Risk.compute),
])
def test_invoke_endpoint_beyond_a_small_budget_is_compute_and_waits_for_approval(args, risk):
    step = _invoke_step(**args)
    assert step.risk is risk
    waits = ReviewPolicy().needs_approval(Plan(steps=[step]))
    assert waits == ([] if risk is Risk.read else ["ask"])


def test_a_plan_cannot_declare_a_lower_risk_for_a_costly_call():
    plan = Plan(steps=[Step(id="ask", tool="invoke_endpoint", risk=Risk.read,
                            args={"endpoint": "tickets", "message": "hi", "max_tokens": 2048})])
    assert plan.validated(ToolRegistry.discover()).steps[0].risk is Risk.compute


@pytest.mark.parametrize("bad", [{"max_tokens": -1}, {"max_tokens": 0}, {"max_tokens": 10**9}, {"max_tokens": "many"},
                                 {"temperature": 5}, {"n": 10}])
def test_out_of_range_invocations_are_refused_at_plan_time(bad):
    from agent.state import PlanError

    with pytest.raises(PlanError, match="invoke_endpoint"):
        _invoke_step(message="hi", **bad)


# ---- batch and async workers: the same rule --------------------------------------------------------------

@pytest.mark.parametrize("ref", ["tickets-sft@2", "risky-sft@1", "pending-link", "runs/j9/model"])
def test_a_batch_never_runs_what_a_deploy_refuses(ws, ref, monkeypatch):
    from runtimes.serving.queue.worker import resolve_models
    from runtimes.serving.batch.transform import BatchSpec, plan_batch

    monkeypatch.chdir(ws.root)
    with pytest.raises(UserError):
        plan_batch(ws, BatchSpec.parse({"model": ref, "table": "tickets"}))
    with pytest.raises(UserError):
        resolve_models(ws, [ref])


def test_no_switch_runs_an_unapproved_version(ws):
    from cli.main import app
    from runtimes.serving.batch.transform import BatchSpec

    with pytest.raises(UserError):
        BatchSpec.parse({"model": "tickets-sft@2", "table": "tickets", "allow_unapproved": True})
    for argv in (["batch", "run", "tickets-sft@2", "--data", "tickets", "--allow-unapproved", "--dry-run"],
                 ["async", "workers", "--model", "tickets-sft@2", "--allow-unapproved", "--exit-when-idle"]):
        out = CliRunner().invoke(app, ["--workspace", str(ws.root), *argv])
        assert out.exit_code == 2 and "No such option" in out.output, out.output

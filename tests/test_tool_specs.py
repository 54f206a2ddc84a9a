"""A tool's arguments are the fields of the runtime spec it calls; every list of techniques is the recipes'; one
set of roles may approve, wherever approval is checked."""
from __future__ import annotations

from typing import get_args

import pytest
from pydantic import create_model

from catalog.semantic.query import MetricQuery
from core.errors import UserError
from core.principal import Principal, may_approve
from runtimes.monitoring.monitors import MonitorSpec
from runtimes.serving.batch.transform import BatchSpec
from runtimes.serving.endpoints.deploy import DeploySpec
from runtimes.training.datasets.preparation import DatasetSpec
from runtimes.training.jobs.spec import JobSpec
from runtimes.training.recipes import RECIPES, TECHNIQUES, recipe
from tools.base import ToolArgs, spec_fields
from tools.registry import ToolRegistry

# tool → the spec it calls and the fields it writes its own way (`mode` as `serverless`, rules as short text)
# or keeps from the chat (an endpoint started from the chat listens on loopback).
CALLS = {"start_finetune": (JobSpec, set()), "run_batch": (BatchSpec, set()),
         "deploy_model": (DeploySpec, {"host", "mode"}), "create_monitor": (MonitorSpec, {"rules"}),
         "query_metrics": (MetricQuery, set())}


@pytest.mark.parametrize("tool", sorted(CALLS))
def test_a_tool_takes_every_field_of_the_spec_it_calls(tool):
    spec, own = CALLS[tool]
    args = ToolRegistry.discover().schema(tool)
    assert set(spec.model_fields) - {"host", "mode"} <= set(args.model_fields)
    for name in set(spec.model_fields) - own:
        mine, theirs = args.model_fields[name], spec.model_fields[name]
        assert (mine.annotation, mine.get_default(call_default_factory=True), mine.description, mine.metadata) == \
            (theirs.annotation, theirs.get_default(call_default_factory=True), theirs.description, theirs.metadata)
    assert "host" not in args.model_fields


def test_a_field_added_to_a_spec_is_an_argument_and_checked_as_in_the_spec():
    class Wider(DeploySpec):
        replicas: int = 1

    args = create_model("WiderArgs", __base__=ToolArgs, **spec_fields(Wider, exclude=("host",)))
    assert args.model_validate({"models": ["m"], "replicas": 3}).replicas == 3
    with pytest.raises(ValueError, match="at least 1 item"):
        args.model_validate({"models": []})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        args.model_validate({"models": ["m"], "host": "0.0.0.0"})


def test_the_tools_validate_their_source_as_the_specs_do():
    registry = ToolRegistry.discover()
    for tool in ("start_finetune", "run_batch"):
        args = registry.schema(tool)
        assert args.model_validate({"model": "m", "sql": "SELECT 1"}).source.statement() == "SELECT 1"
        with pytest.raises(ValueError, match="give exactly one of `table` and `sql`"):
            args.model_validate({"model": "m", "table": "t", "sql": "SELECT 1"})


def test_every_technique_list_is_the_recipes():
    assert TECHNIQUES == tuple(RECIPES) == ("sft", "dpo", "rlvr", "rlaif")
    for technique in TECHNIQUES:
        module = recipe(technique)
        assert hasattr(module, "Config") and hasattr(module, "build_trainer")
    registry = ToolRegistry.discover()
    for field in (JobSpec.model_fields["technique"], DatasetSpec.model_fields["technique"],
                  registry.schema("start_finetune").model_fields["technique"]):
        assert get_args(field.annotation) == TECHNIQUES
    chosen = registry.schema("propose_finetune").model_fields["technique"].annotation
    assert set(get_args(get_args(chosen)[0])) == set(TECHNIQUES)
    with pytest.raises(UserError, match="^fine-tuning job: `technique`: Input should be 'sft', 'dpo', 'rlvr' or "
                                        "'rlaif'$"):
        JobSpec.parse({"model": "m", "table": "t", "technique": "ppo"})


def test_one_set_of_roles_may_approve(workspace):
    assert may_approve({"approver"}) and may_approve(["admin", "viewer"])
    assert not may_approve({"viewer"}) and not may_approve(None) and not may_approve(())
    viewer = Principal(name="vi", roles={"viewer"})
    tool = ToolRegistry.discover().bind(workspace, principal=viewer)["approve_model_version"]
    with pytest.raises(UserError, match="`vi` may not decide on model versions: that needs the `approver` role"):
        tool.invoke({"name": "m", "version": "1"})

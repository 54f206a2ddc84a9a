"""The vLLM backend where vLLM is not installed (these machines): a deploy naming it is refused before anything
starts, saying what to do, and an unknown backend names the ones there are."""
from __future__ import annotations

import importlib.util

import pytest

from core.errors import UserError
from runtimes.serving.endpoints.deploy import deploy, list_endpoints
from tests.serving_models import tiny_base

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")


def test_a_vllm_deploy_without_vllm_is_refused_and_leaves_nothing(workspace):
    tiny_base(workspace.root / "models" / "base" / "tiny")
    with pytest.raises(UserError, match="needs vLLM, which is not installed here.*default transformers backend"):
        deploy(workspace, ["tiny"], backend="vllm")
    with pytest.raises(UserError, match="backend"):
        deploy(workspace, ["tiny"], backend="tgi")
    assert list_endpoints(workspace) == []
    assert not (workspace.root / "runs" / "endpoints").exists() or not any((workspace.root / "runs" / "endpoints").iterdir())


def test_the_engine_itself_refuses_without_vllm():
    from runtimes.serving.engines.vllm_engine import VllmEngine

    with pytest.raises(UserError, match="needs vLLM"):
        VllmEngine("/nowhere")

"""What the vLLM backend sends vLLM for a request, checked where vLLM is not installed: the OpenAI fields that
shape decoding reach it as data (not as transformers processors) and become `SamplingParams` arguments, the
tool-call grammar a structural tag xgrammar compiles; what vLLM could not honour is refused."""
from __future__ import annotations

import json

import pytest

from core.errors import UserError
from runtimes.serving.endpoints.openai_schema import ChatCompletionRequest
from runtimes.serving.endpoints.request_decoding import logits_processors
from runtimes.serving.engines.constrained import Constraint
from runtimes.serving.engines.transformers_engine import Sampling
from runtimes.serving.engines.vllm_requests import sampling_params_args

ASK = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "ship", "parameters": {
    "type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}}}


class DecodesOnItsOwn:
    """What the request path reads of a backend that takes decoding settings as data (as `VllmEngine` does)."""
    takes_constraints = True
    vocab_size = 1000


def _args(**body) -> dict:
    request = ChatCompletionRequest(model="m", messages=ASK, **body)
    processors = logits_processors(request, DecodesOnItsOwn(), prompt_tokens=7)
    return sampling_params_args(Sampling(max_new_tokens=20, temperature=0.0, top_p=0.9, stop=["\n\n"], seed=4,
                                         processors=processors))


def test_plain_settings():
    assert _args() == {"n": 1, "max_tokens": 20, "temperature": 0.0, "top_p": 0.9, "stop": ["\n\n"], "seed": 4,
                       "skip_special_tokens": True}
    assert sampling_params_args(Sampling())["stop"] is None  # no stop strings: vLLM's default


def test_penalties_and_logit_bias():
    args = _args(presence_penalty=0.5, frequency_penalty=-1.0, logit_bias={"17": -100, "3": 2.5})
    assert (args["presence_penalty"], args["frequency_penalty"]) == (0.5, -1.0)
    assert args["logit_bias"] == {17: -100, 3: 2.5}


def test_json_output():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    assert _args(response_format=fmt)["structured_outputs"] == {"json": schema}
    assert _args(response_format={"type": "json_object"})["structured_outputs"] == {"json_object": True}
    assert "structured_outputs" not in _args(response_format={"type": "text"})


@pytest.mark.parametrize(("choice", "takes", "refuses"), [
    ("required", '<tool_call>\n{"name": "ship", "arguments": {"id": 3}}\n</tool_call>', "text first"),
    ({"type": "function", "function": {"name": "ship"}}, '<tool_call>\n{"name": "ship", "arguments": {"id": 3}}\n'
     '</tool_call>', '<tool_call>\n{"name": "ship", "arguments": {"id": "3"}}\n</tool_call>'),
    ("auto", "plain text", '<tool_call>\n{"name": "other", "arguments": {}}\n</tool_call>'),
])
def test_tool_calls_become_a_structural_tag_xgrammar_compiles(choice, takes, refuses):
    import xgrammar as xgr
    from xgrammar.testing import _is_grammar_accept_string

    tag = _args(tools=[TOOL], tool_choice=choice)["structured_outputs"]["structural_tag"]
    grammar = xgr.Grammar.from_structural_tag(json.loads(tag))
    assert _is_grammar_accept_string(grammar, takes) and not _is_grammar_accept_string(grammar, refuses)


CALL = '<tool_call>\n{"name": "ship", "arguments": {"id": 3}}\n</tool_call>'


@pytest.mark.parametrize(("parallel", "choice", "takes", "refuses"), [
    (True, "required", [CALL, CALL + "\n" + CALL], ["", CALL + " and text", "text " + CALL]),
    (False, "required", [CALL], [CALL + "\n" + CALL]),
    (True, "auto", ["", "text", CALL + "\n" + CALL, "a " + CALL + " b"], []),
    (False, "auto", ["a " + CALL], ["a " + CALL + " b " + CALL, CALL + "\n" + CALL]),  # the reply ends at the call
])
def test_how_many_calls_a_reply_may_hold(parallel, choice, takes, refuses):
    import xgrammar as xgr
    from xgrammar.testing import _is_grammar_accept_string

    tag = _args(tools=[TOOL], tool_choice=choice, parallel_tool_calls=parallel)["structured_outputs"]
    grammar = xgr.Grammar.from_structural_tag(json.loads(tag["structural_tag"]))
    assert all(_is_grammar_accept_string(grammar, t) for t in takes)
    assert not any(_is_grammar_accept_string(grammar, t) for t in refuses)


def test_tool_choice_none_sends_no_grammar():
    assert "structured_outputs" not in _args(tools=[TOOL], tool_choice="none")


def test_settings_vllm_cannot_take_are_refused():
    with pytest.raises(UserError, match="the vllm backend cannot apply Opaque"):
        sampling_params_args(Sampling(processors=[type("Opaque", (), {})()]))


def test_a_constraint_is_data():
    c = Constraint(structural_tag={"type": "structural_tag", "format": {"type": "const_string", "value": "x"}})
    assert sampling_params_args(Sampling(processors=[c]))["structured_outputs"] == {
        "structural_tag": json.dumps(c.structural_tag)}

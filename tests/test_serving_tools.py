"""Tool calling on the OpenAI-compatible API: `tools`/`tool_choice` and the legacy `functions`/`function_call`,
answered by constrained decoding against the tool schemas. Over real HTTP on loopback with the official `openai`
client and with raw requests, whole and streamed; the call text parser under every way of cutting it into pieces;
the prompt rendering of tools and of tool history with and without a chat template that knows tools."""
from __future__ import annotations

import itertools
import json

import httpx
import jsonschema
import openai
import pytest

from runtimes.models.refs import ServedModel
from runtimes.serving.endpoints.api_keys import key_hash
from runtimes.serving.endpoints.openai_api import EndpointSettings, create_app
from runtimes.serving.endpoints.tool_calls import ToolCallParser
from runtimes.serving.engines.pool import EnginePool
from tests.serving_http import serve
from tests.serving_models import tiny_base

KEY = "tools-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ASK = [{"role": "user", "content": "Where does order 5 ship?"}]

# Small schemas and short names: every forced character of a call is a decoding step of the tiny model.
WEATHER = {"type": "object", "additionalProperties": False, "required": ["city", "days"],
           "properties": {"city": {"type": "string", "maxLength": 4}, "days": {"type": "integer", "minimum": 1,
                                                                                "maximum": 7}}}
SHIP = {"type": "object", "additionalProperties": False, "required": ["id", "fast"],
        "properties": {"id": {"type": "integer", "minimum": 0, "maximum": 99}, "fast": {"type": "boolean"}}}
SCHEMAS = {"weather": WEATHER, "ship": SHIP}
TOOLS = [{"type": "function", "function": {"name": n, "description": f"{n} tool", "parameters": s}}
         for n, s in SCHEMAS.items()]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    base = tiny_base(tmp_path_factory.mktemp("tools") / "base")
    pool = EnginePool([ServedModel("tiny", str(base), "tiny", None)])
    pool.load_all()
    app = create_app(pool, EndpointSettings(name="tools", key_hashes=(key_hash(KEY),)))
    with serve(app) as url:
        yield url, pool


@pytest.fixture()
def client(endpoint):
    return openai.OpenAI(base_url=endpoint[0] + "/v1", api_key=KEY, max_retries=0)


def _valid_call(name: str, arguments: str) -> dict:
    """The arguments of a call parse as JSON and match the named tool's schema."""
    args = json.loads(arguments)
    jsonschema.validate(args, SCHEMAS[name])
    return args


def _stream(client, **kw) -> tuple[str | None, list[dict], str | None]:
    """(content, calls, finish_reason) of a streamed reply, the tool-call deltas put together by index."""
    calls: dict[int, dict] = {}
    content, finish = "", None
    for chunk in client.chat.completions.create(stream=True, **kw):
        for choice in chunk.choices:
            delta = choice.delta
            content += delta.content or ""
            for tc in delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "type": None, "name": "", "arguments": ""})
                if tc.id:
                    assert slot["id"] is None, "an id is sent once per call"
                    slot["id"], slot["type"] = tc.id, tc.type
                assert slot["id"] is not None, "the first delta of a call carries its id"
                slot["name"] += tc.function.name or "" if tc.function else ""
                slot["arguments"] += tc.function.arguments or "" if tc.function else ""
            finish = choice.finish_reason or finish
    return content or None, [calls[i] for i in sorted(calls)], finish


# ---- bad tool definitions: a 400 that names the tool and what is wrong --------------------------------
def _fn(name: str, parameters: object = None) -> dict:
    fn: dict = {"name": name}
    if parameters is not None:
        fn["parameters"] = parameters
    return {"type": "function", "function": fn}


@pytest.mark.parametrize(("extra", "param", "says"), [
    ({"tools": [{"type": "retrieval"}]}, "tools", "tools[0]: type must be \"function\""),
    ({"tools": [{"type": "function"}]}, "tools", "tools[0]: needs a `function` object"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools", "tools[0]: the function "
     "name None must be"),
    ({"tools": [_fn("get weather")]}, "tools", "tools[0]: the function name 'get weather' must be"),
    ({"tools": [_fn("ok", WEATHER), _fn("ship", {"type": "nope"})]}, "tools",
     "tools[1] ('ship'): `parameters` is not a valid JSON schema"),
    ({"tools": [_fn("lister", {"type": "array"})]}, "tools", "tools[0] ('lister'): `parameters` must be a JSON "
     "schema of type \"object\""),
    ({"tools": [_fn("f", {"type": "object", "properties": {"x": {"type": "string", "pattern": "(unclosed"}}})]},
     "tools", "tools[0] ('f'): `parameters` is not a valid JSON schema: '(unclosed' is not a 'regex' (at "
     "`properties/x/pattern`)"),
    ({"tools": [_fn("f", {"type": "object", "properties": {"x": {"$ref": "#/$defs/gone"}}})]},
     "tools", "tools[0] ('f'): `parameters` cannot be used for constrained decoding: Cannot find field '$defs'"),
    ({"tools": [_fn("f", WEATHER), _fn("f", SHIP)]}, "tools", "tools[1] ('f'): another tool has this name"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice",
     "no tool is named 'nope'; the tools are 'weather', 'ship'"),
    ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice", "'none', 'auto', 'required'"),
    ({"tool_choice": "required"}, "tool_choice", "needs `tools`"),
    ({"tools": TOOLS, "functions": [{"name": "f"}]}, "functions", "send `tools` or `functions`, not both"),
    ({"functions": [{"name": "f", "parameters": {"type": "nope"}}]}, "functions",
     "functions[0] ('f'): `parameters` is not a valid JSON schema"),
    ({"functions": [{"name": "f"}], "function_call": {"name": "g"}}, "function_call", "no function is named 'g'"),
    ({"tools": TOOLS, "response_format": {"type": "json_object"}}, "response_format",
     "send `response_format` or tool calls, not both"),
    ({"messages": [*ASK, {"role": "tool", "content": "sunny"}]}, "messages.1.tool_call_id",
     "a `tool` message answers a call: send its `tool_call_id`"),
])
def test_bad_tools_are_refused_naming_the_tool(endpoint, extra, param, says):
    body = {"model": "tiny", "messages": ASK, "max_tokens": 4} | extra
    r = httpx.post(endpoint[0] + "/v1/chat/completions", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and says in error["message"], error
    assert error["type"] == "invalid_request_error"


# ---- tool_choice: a named function, required, none --------------------------------------------------
NAMED = dict(model="tiny", messages=ASK, tools=TOOLS, max_tokens=120, temperature=1.0, seed=3,
             tool_choice={"type": "function", "function": {"name": "ship"}})


@pytest.fixture(scope="module")
def named(endpoint):
    """Two sampled replies to a request naming `ship` (the first is the one the same request streams)."""
    client = openai.OpenAI(base_url=endpoint[0] + "/v1", api_key=KEY, max_retries=0)
    return client.chat.completions.create(n=2, **NAMED)


@pytest.mark.slow
def test_a_named_function_is_called_with_valid_arguments_every_time(named):
    ids = set()
    for choice in named.choices:
        assert choice.finish_reason == "tool_calls" and choice.message.content is None, choice
        (call,) = choice.message.tool_calls
        assert call.type == "function" and call.function.name == "ship"
        _valid_call("ship", call.function.arguments)
        assert call.id.startswith("call_")
        ids.add(call.id)
    assert len(ids) == 2  # each call its own id
    assert len({c.message.tool_calls[0].function.arguments for c in named.choices}) > 1  # sampled, not fixed


@pytest.mark.slow
def test_a_streamed_named_call_arrives_in_pieces_that_add_up(client, named):
    whole = named.choices[0].message.tool_calls[0]
    content, calls, finish = _stream(client, **NAMED)
    assert (content, finish) == (None, "tool_calls")
    assert [(c["type"], c["name"], c["arguments"]) for c in calls] == [("function", "ship", whole.function.arguments)]
    assert calls[0]["id"].startswith("call_")
    pieces = [tc.function.arguments for chunk in client.chat.completions.create(stream=True, **NAMED)
              for c in chunk.choices for tc in c.delta.tool_calls or [] if tc.function.arguments]
    assert len(pieces) > 1 and "".join(pieces) == whole.function.arguments  # streamed as decoded, not at the end


@pytest.mark.slow
def test_required_calls_one_of_the_tools_and_streams_the_same_call(client):
    args = dict(model="tiny", messages=ASK, tools=TOOLS, tool_choice="required", parallel_tool_calls=False,
                max_tokens=120, temperature=1.0, seed=11)
    whole = client.chat.completions.create(**args).choices[0]
    assert whole.finish_reason == "tool_calls"
    (call,) = whole.message.tool_calls  # parallel_tool_calls=false: one call
    _valid_call(call.function.name, call.function.arguments)
    content, calls, finish = _stream(client, **args)
    assert (content, finish) == (whole.message.content, "tool_calls")
    assert [(c["type"], c["name"], c["arguments"]) for c in calls] == [("function", call.function.name,
                                                                        call.function.arguments)]


def test_tool_choice_none_answers_in_text(client):
    reply = client.chat.completions.create(model="tiny", messages=ASK, tools=TOOLS, tool_choice="none",
                                           max_tokens=12, temperature=0).choices[0]
    assert reply.message.tool_calls is None and isinstance(reply.message.content, str)
    assert reply.finish_reason in ("stop", "length")


def test_auto_answers_in_text_when_the_model_writes_no_call(client):
    reply = client.chat.completions.create(model="tiny", messages=ASK, tools=TOOLS, max_tokens=12, temperature=0)
    choice = reply.choices[0]
    if choice.message.tool_calls:  # the grammar allows a call; any call must then be valid
        for call in choice.message.tool_calls:
            _valid_call(call.function.name, call.function.arguments)
        assert choice.finish_reason == "tool_calls"
    else:
        assert isinstance(choice.message.content, str) and choice.finish_reason in ("stop", "length")


# ---- legacy functions, raw HTTP ---------------------------------------------------------------------
@pytest.mark.slow
def test_legacy_functions_answer_in_the_legacy_shape(endpoint):
    body = {"model": "tiny", "messages": ASK, "max_tokens": 120, "temperature": 1.0, "seed": 2,
            "functions": [t["function"] for t in TOOLS], "function_call": {"name": "weather"}}
    r = httpx.post(endpoint[0] + "/v1/chat/completions", json=body, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "function_call"
    message = choice["message"]
    assert "tool_calls" not in message and message["content"] is None
    assert message["function_call"]["name"] == "weather"
    _valid_call("weather", message["function_call"]["arguments"])
    with httpx.stream("POST", endpoint[0] + "/v1/chat/completions", json={**body, "stream": True}, headers=AUTH,
                      timeout=120) as s:
        events = [json.loads(line[6:]) for line in s.iter_lines() if line.startswith("data: {")]
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert all("tool_calls" not in d for d in deltas)
    name = "".join(d["function_call"].get("name", "") for d in deltas if "function_call" in d)
    arguments = "".join(d["function_call"].get("arguments", "") for d in deltas if "function_call" in d)
    assert (name, arguments) == ("weather", message["function_call"]["arguments"])
    assert events[-1]["choices"][0]["finish_reason"] == "function_call"


# ---- history with calls and their results -----------------------------------------------------------
HISTORY = [*ASK,
           {"role": "assistant", "content": None, "tool_calls": [
               {"id": "call_1", "type": "function", "function": {"name": "ship",
                                                                  "arguments": "{\"id\": 5, \"fast\": true}"}}]},
           {"role": "tool", "tool_call_id": "call_1", "content": "{\"day\": 3}"}]


def test_tool_and_assistant_history_is_accepted_and_rendered(client):
    short = client.chat.completions.create(model="tiny", messages=HISTORY[:2], tools=TOOLS, tool_choice="none",
                                           max_tokens=4, temperature=0)
    full = client.chat.completions.create(model="tiny", messages=HISTORY, tools=TOOLS, tool_choice="none",
                                          max_tokens=4, temperature=0)
    assert full.usage.prompt_tokens > short.usage.prompt_tokens  # the tool result is in the prompt
    assert isinstance(full.choices[0].message.content, str)
    asked = client.chat.completions.create(model="tiny", max_tokens=4, temperature=0, messages=ASK)
    legacy = client.chat.completions.create(model="tiny", max_tokens=4, temperature=0, messages=[
        *ASK, {"role": "assistant", "content": None, "function_call": {"name": "ship", "arguments": "{}"}},
        {"role": "function", "name": "ship", "content": "{\"day\": 3}"}])
    assert legacy.choices[0].message.function_call is None and legacy.usage.prompt_tokens > asked.usage.prompt_tokens


def test_history_renders_through_the_template_or_the_system_prompt(endpoint):
    from runtimes.serving.endpoints.tool_calls import chat_turns
    from runtimes.serving.endpoints.openai_schema import ChatCompletionRequest
    from runtimes.serving.engines.chat_input import chat_template_input

    engine = endpoint[1].acquire("tiny", 0.0)[0]
    endpoint[1].release("tiny")
    tokenizer = engine.tokenizer
    body = ChatCompletionRequest(model="tiny", messages=HISTORY, tools=TOOLS)
    turns, tools = chat_turns(body), body.tool_specs()
    # A template without tools (ChatML here): the tools go into a system message, the call as the model writes it
    messages, extra = chat_template_input(tokenizer, turns, tools)
    assert extra == {} and messages[0]["role"] == "system" and '"name": "ship"' in messages[0]["content"]
    assert '<tool_call>\n{"name": "ship", "arguments": {"id": 5, "fast": true}}\n</tool_call>' in \
        messages[2]["content"]
    assert messages[3] == {"role": "user", "content": "<tool_response>\n{\"day\": 3}\n</tool_response>"}
    # A template that renders tools itself gets them, and the call with its arguments as an object
    native = ("{% for t in tools %}TOOL {{ t.function.name }};{% endfor %}{% for m in messages %}"
              "{% for c in m.tool_calls or [] %}CALL {{ c.function.name }} {{ c.function.arguments.id }};"
              "{% endfor %}{{ m.role }}:{{ m.content }};{% endfor %}")
    saved = tokenizer.chat_template
    try:
        tokenizer.chat_template = native
        messages, extra = chat_template_input(tokenizer, turns, tools)
        text = tokenizer.apply_chat_template(messages, tokenize=False, **extra)
    finally:
        tokenizer.chat_template = saved
    assert text.startswith("TOOL weather;TOOL ship;user:Where") and "CALL ship 5;" in text
    assert "tool:{\"day\": 3};" in text


# ---- the parser of call text: streamed pieces add up to the whole, whatever the cuts ----------------
# The content of a reply with calls is the text before the first call (trailing whitespace dropped; none left:
# null), as vLLM's parsers answer; text after a call is not part of the reply.
CALL = '<tool_call>\n{{"name": "{}", "arguments": {}}}\n</tool_call>'
TEXTS = [
    CALL.format("ship_order", '{"order": 5, "express": true}'),
    "Let me look. " + CALL.format("get_weather", '{"city": "Pa}ris", "days": 2}') + "\n"
    + CALL.format("ship_order", '{"order": 1, "express": false}') + " done",
    "no call at all <tool_ca but close",
    CALL.format("get_weather", '{"city": "Zü<r", "days"'),  # cut by the token limit
]


def _whole(text: str) -> tuple[str | None, list[tuple[str, str]]]:
    p = ToolCallParser()
    p.feed(text)
    p.close()
    return p.content(), [(c.name, c.arguments) for c in p.calls]


def test_parser_reads_calls_and_text():
    assert _whole(TEXTS[0]) == (None, [("ship_order", '{"order": 5, "express": true}')])
    assert _whole(TEXTS[1]) == ("Let me look.", [("get_weather", '{"city": "Pa}ris", "days": 2}'),
                                                        ("ship_order", '{"order": 1, "express": false}')])
    assert _whole(TEXTS[2]) == ("no call at all <tool_ca but close", [])
    assert _whole(TEXTS[3]) == (None, [("get_weather", '{"city": "Zü<r", "days"')])
    # raw control characters in a string (which xgrammar lets through) are escaped, so the arguments parse
    assert _whole(CALL.format("w", '{"c": "a\x0fb\tc"}')) == (None, [("w", '{"c": "a\\u000fb\\u0009c"}')])


@pytest.mark.parametrize("text", TEXTS)
def test_parser_deltas_add_up_to_the_whole_for_every_split(text):
    whole = _whole(text)
    for cuts in itertools.chain(itertools.combinations(range(1, len(text)), 1),
                                itertools.combinations(range(1, len(text), 3), 2)):
        edges = [0, *cuts, len(text)]
        p = ToolCallParser()
        content, calls = "", {}
        for piece in [text[a:b] for a, b in zip(edges, edges[1:])] + [None]:
            events = p.feed(piece) if piece is not None else p.close()
            for kind, index, value in events:
                if kind == "content":
                    content += value
                elif kind == "name":
                    assert index not in calls
                    calls[index] = [value, ""]
                else:
                    calls[index][1] += value
        assert (content or None, [tuple(calls[i]) for i in sorted(calls)]) == whole, cuts


# ---- the grammar for `auto`: free text, or calls whose arguments match -----------------------------
def test_auto_grammar_takes_text_or_valid_calls_only(endpoint):
    import xgrammar as xgr

    from runtimes.serving.endpoints.openai_schema import ChatCompletionRequest
    from runtimes.serving.engines.constrained import _compiler
    from runtimes.serving.engines.tool_format import tool_call_tag

    engine = endpoint[1].acquire("tiny", 0.0)[0]
    endpoint[1].release("tiny")
    compiler = _compiler(engine.tokenizer, int(engine.model.config.get_text_config().vocab_size))
    specs = ChatCompletionRequest(model="tiny", messages=ASK, tools=TOOLS).tool_specs()
    grammar = compiler.compile_structural_tag(tool_call_tag(specs, "auto", parallel=True))

    def takes(text: str) -> bool:
        """The whole text is accepted and the reply may end there."""
        m = xgr.GrammarMatcher(grammar)
        return m.accept_string(text) and m.is_completed()

    assert takes("just text, no call")
    assert takes("Sure. " + CALL.format("ship", '{"id": 5, "fast": true}') + " ok")
    assert not takes(CALL.format("ship", '{"id": "five", "fast": true}'))
    assert not takes(CALL.format("ship", '{"id": 500, "fast": true}'))
    assert not takes(CALL.format("ship", '{"id": 5}'))
    assert not takes(CALL.format("nope", "{}"))

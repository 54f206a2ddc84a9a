"""The verifiable rewards library on plain input → output tables: exact match, numeric answers with GSM8K's
`#### n`, regex, JSON-schema validity, sandboxed Python tests (refusing an infinite loop and a memory bomb,
and keeping this process's environment away from the code) and weighted combinations."""
from __future__ import annotations

import pytest

from core.errors import UserError
from runtimes.training.rewards.combine import RewardSpec, build_combined, build_reward, combine
from runtimes.training.rewards.python_tests import SandboxLimits, extract_code, python_tests, run_python_tests
from runtimes.training.rewards.verifiable import (exact_match, final_number, json_schema, numeric_answer,
                                                  regex_match)


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize(("completion", "answer", "score"), [
    ("Paris", "Paris", 1.0), ("  paris \n", "Paris", 1.0), ("The capital is   Paris", "the capital is paris", 1.0),
    ("Paris.", "Paris", 0.0), ("", "Paris", 0.0), (_chat("Lyon"), "Lyon", 1.0),
])
def test_exact_match(completion, answer, score):
    assert exact_match()(prompts=["q"], completions=[completion], answer=[answer]) == [score]


@pytest.mark.parametrize(("completion", "answer", "score"), [
    ("She has 3 + 4 = 7 apples.\n#### 7", "7", 1.0),
    ("#### 1,234", "1234", 1.0),
    ("The total is $18.", "18", 1.0),           # no `####`: the last number counts
    ("I think 7, no wait, 8", "7", 0.0),
    ("#### 7.0", "7", 1.0),
    ("#### -3", "3", 0.0),
    ("no number at all", "5", 0.0),
    ("#### 12\nthen later 99", "12", 1.0),       # the marked answer wins over later numbers
    (_chat("Natalia sold 48/2 = 24 clips in May.\n#### 72"), "72", 1.0),
])
def test_numeric_answer(completion, answer, score):
    assert numeric_answer()(prompts=["q"], completions=[completion], answer=[answer]) == [score]


def test_numeric_answer_strict_and_final_number():
    strict = numeric_answer(strict=True)
    assert strict(completions=["The total is 18", "#### 18"], answer=["18", "18"]) == [0.0, 1.0]
    assert str(final_number("a 1,000.5 b")) == "1000.5" and final_number("none") is None


def test_regex_and_json_schema():
    digits = regex_match(r"\d+")
    assert digits(completions=["abc", "a1", _chat("42")]) == [0.0, 1.0, 1.0]
    yes_no = regex_match(r"(yes|no)", full=True)
    assert yes_no(completions=["yes", " no\n", "yes!"]) == [1.0, 1.0, 0.0]
    with pytest.raises(UserError, match=r"pattern `\(` is not a valid regular expression"):
        regex_match("(")

    schema = {"type": "object", "required": ["name", "age"],
              "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}
    valid = json_schema(schema)
    table = [('{"name": "Ada", "age": 36}', 1.0), ('{"name": "Ada"}', 0.0), ('{"name": "Ada", "age": -1}', 0.0),
             ("not json", 0.0), ('Here:\n```json\n{"name": "Bo", "age": 3}\n```', 1.0), ("[1, 2]", 0.0)]
    assert valid(completions=[c for c, _ in table]) == [s for _, s in table]
    assert json_schema('{"type": "array"}')(completions=["[1]", "{}"]) == [1.0, 0.0]
    with pytest.raises(UserError, match="not a valid JSON Schema"):
        json_schema({"type": "banana"})
    with pytest.raises(UserError, match="schema is not JSON"):
        json_schema("{nope")


def test_missing_column_is_a_clear_error():
    with pytest.raises(UserError, match=r"the `numeric_answer` reward needs a `answer` column in the dataset; it has: solution"):
        numeric_answer()(completions=["1"], solution=["x"])


def test_python_tests_pass_and_fail_in_the_sandbox():
    tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
    completions = ["```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    return a - b",
                   "def add(a, b) return", _chat("Sure!\n```py\ndef add(a, b):\n    return sum((a, b))\n```")]
    reward = python_tests()
    assert reward(completions=completions, tests=[tests] * 4) == [1.0, 0.0, 0.0, 1.0]
    assert extract_code("text\n```python\nx = 1\n```\nmore\n```python\ny = 2\n```") == "y = 2\n"
    failed = run_python_tests("def add(a, b):\n    return 0", tests)
    assert not failed.passed and failed.reason == "failed" and "AssertionError" in failed.output


def test_sandbox_refuses_an_infinite_loop_and_a_memory_bomb(monkeypatch):
    loop = run_python_tests("while True:\n    pass", "", SandboxLimits(timeout_s=1))
    assert (loop.passed, loop.reason) == (False, "timed out")
    forked = run_python_tests("import subprocess\nsubprocess.Popen(['sleep', '30'])\nwhile True: pass", "",
                              SandboxLimits(timeout_s=1))
    assert forked.reason == "timed out"  # the whole process group is killed, children included
    bomb = run_python_tests("x = bytearray(4 * 1024 ** 3)", "", SandboxLimits(memory_mb=128))
    assert (bomb.passed, bomb.reason) == (False, "memory limit")
    grow = run_python_tests("chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 ** 2))", "",
                            SandboxLimits(memory_mb=128, timeout_s=10))
    assert grow.reason == "memory limit"
    # Nothing of this process's environment (keys, proxies) reaches the code; it runs in a fresh folder.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    env = run_python_tests("import os, sys\nprint(sorted(os.environ), os.getcwd(), file=sys.stderr)\n"
                           "assert 'OPENAI_API_KEY' not in os.environ and 'HTTPS_PROXY' not in os.environ", "")
    assert env.passed and "lathe-sandbox-" in env.output and "sk-secret" not in env.output


def test_rewards_combine_with_weights():
    digits, exact = regex_match(r"\d"), exact_match()
    both = combine([(digits, 1.0), (exact, 2.0)])
    assert both(completions=["7", "x", "8"], answer=["7", "x", "9"]) == [3.0, 2.0, 1.0]

    def sometimes(completions, **_):
        return [None if c == "skip" else 0.5 for c in completions]

    half = combine([(sometimes, 4.0)])
    assert half(completions=["a", "skip"]) == [2.0, None]  # no score stays no score, never 0

    specs = [RewardSpec.parse("numeric_answer:2"), RewardSpec(name="regex", pattern=r"####", weight=0.5)]
    combined = build_combined(specs)
    assert combined(completions=["#### 4", "4", "#### 5"], answer=["4", "4", "4"]) == [2.5, 2.0, 0.5]
    assert build_reward(RewardSpec(name="python_tests")).__name__ == "python_tests"
    with pytest.raises(UserError, match=r"reward `numeric:2`: name: Input should be 'exact_match', 'numeric_answer'"):
        RewardSpec.parse("numeric:2")
    with pytest.raises(UserError, match=r"the weight after `:` must be a number"):
        RewardSpec.parse("regex:heavy")
    with pytest.raises(UserError, match="at least one"):
        combine([])

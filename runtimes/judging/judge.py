"""The RLAIF reward: an LLM judge, called through LiteLLM, scores each completion with a rubric (built-in
Jinja templates in `rubrics/` beside this module, or a custom one). Calls are async, run concurrently per batch under
a rate limit, retried, and cached on disk in the run folder.

A judge failure (an error after the retries, or a reply with no score) must never crash training: it is
recorded in `failures.jsonl` and the completion gets no score (None), which GRPO leaves out.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UserError
from runtimes.training.rewards.verifiable import completion_text

RUBRICS_DIR = Path(__file__).resolve().parent / "rubrics"  # package data, beside the judge that reads them
# Rubrics that judge against the row's `reference` column (the source text or a good reply).
NEEDS_REFERENCE = frozenset({"faithfulness"})
_SCORE = re.compile(r"score\s*[:=]\s*\**\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def builtin_rubrics() -> list[str]:
    return sorted(p.stem for p in RUBRICS_DIR.glob("*.jinja"))


@dataclass(frozen=True)
class Rubric:
    name: str
    text: str  # the Jinja source; part of the cache key, so an edited rubric is scored afresh
    max_score: float = 10.0

    def render(self, *, prompt: str, completion: str, reference: str | None, policy: str | None) -> str:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        # Sandboxed: a custom rubric is user text and must not reach Python objects through the template.
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True,
                                   lstrip_blocks=True)
        return env.from_string(self.text).render(prompt=prompt, completion=completion, reference=reference,
                                                 policy=policy).strip()


def load_rubric(rubric: str, *, max_score: float = 10.0) -> Rubric:
    """A built-in rubric by name, a `.jinja` file, or Jinja text (anything with `{{`)."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    if "{{" in rubric:
        name, text = "custom", rubric
    elif rubric.endswith(".jinja") or "/" in rubric:
        path = Path(rubric).expanduser()
        if not path.is_file():
            raise UserError(f"no rubric file at {path}: give a built-in rubric ({', '.join(builtin_rubrics())}), "
                            "a .jinja file or the rubric's Jinja text")
        name, text = path.stem, path.read_text(encoding="utf-8")
    else:
        path = RUBRICS_DIR / f"{rubric}.jinja"
        if not path.is_file():
            from catalog.suggestions import unknown

            raise UserError(unknown("rubric", rubric, builtin_rubrics()))
        name, text = rubric, path.read_text(encoding="utf-8")
    try:
        SandboxedEnvironment().parse(text)
    except TemplateSyntaxError as e:
        raise UserError(f"rubric `{name}` is not valid Jinja: line {e.lineno}: {e.message}") from None
    if "completion" not in text:
        raise UserError(f"rubric `{name}` never shows the judge the completion: use `{{{{ completion }}}}` in it")
    return Rubric(name, text, max_score)


def parse_score(reply: str, max_score: float) -> float | None:
    """The judge's last `Score: N` (or JSON `{"score": N}`), scaled to 0..1; None when absent or out of range."""
    found = _SCORE.findall(reply or "")
    if not found:
        found = re.findall(r'"score"\s*:\s*(-?\d+(?:\.\d+)?)', reply or "")
    if not found:
        return None
    value = float(found[-1])
    if not 0 <= value <= max_score:
        return None
    return value / max_score


def prompt_text(prompt: Any) -> str:
    """A conversation as the judge reads it: one `Role: text` paragraph per message."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        msgs = [m for m in prompt if isinstance(m, dict)]
        if len(msgs) == 1 and msgs[0].get("role") == "user":
            return str(msgs[0].get("content") or "")
        return "\n\n".join(f"{str(m.get('role', 'user')).capitalize()}: {m.get('content') or ''}" for m in msgs)
    return str(prompt)


class RateLimit:
    """At most `per_second` request starts per second, spaced evenly."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def wait(self) -> None:
        if not self.interval:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


@dataclass
class Judge:
    """Scores completions with `rubric` by asking `model` (any LiteLLM model name) through LiteLLM."""
    model: str
    rubric: Rubric
    run_dir: Path
    api_base: str | None = None
    api_key: str | None = None
    policy: str | None = None
    concurrency: int = 4
    requests_per_second: float = 5.0
    retries: int = 2
    timeout_s: float = 60.0
    calls: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    _cache: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # The ranks of a distributed run share these files: each line is one write to a file opened for appending,
        # which the kernel appends whole, so lines of different ranks never interleave.
        self.folder = Path(self.run_dir) / "judge"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cache_path = self.folder / "cache.jsonl"
        self.failures_path = self.folder / "failures.jsonl"
        if self.cache_path.is_file():  # a resumed run reuses the scores it already paid for
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._cache[entry["key"]] = float(entry["score"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash mid-write
        self._limit = RateLimit(self.requests_per_second)

    def _key(self, message: str) -> str:
        return hashlib.sha256(f"{self.model}\0{self.rubric.text}\0{message}".encode()).hexdigest()

    async def score(self, prompts: Sequence[Any], completions: Sequence[Any],
                    references: Sequence[str | None] | None = None) -> list[float | None]:
        """One score in 0..1 (or None: failed, recorded) per completion, the batch's calls run concurrently."""
        refs = list(references) if references is not None else [None] * len(completions)
        semaphore = asyncio.Semaphore(max(1, self.concurrency))

        async def one(i: int) -> float | None:
            if self.rubric.name in NEEDS_REFERENCE and not refs[i]:
                self._fail(i, "", "the row has no reference text for the faithfulness rubric")
                return None
            message = self.rubric.render(prompt=prompt_text(prompts[i]), completion=completion_text(completions[i]),
                                         reference=refs[i], policy=self.policy)
            key = self._key(message)
            if key in self._cache:
                return self._cache[key]
            async with semaphore:
                return await self._ask(i, key, message)

        return list(await asyncio.gather(*(one(i) for i in range(len(completions)))))

    async def _ask(self, i: int, key: str, message: str) -> float | None:
        import litellm

        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(8.0, 0.25 * 2 ** attempt))
            await self._limit.wait()
            self.calls += 1
            try:
                response = await litellm.acompletion(
                    model=self.model, messages=[{"role": "user", "content": message}], api_base=self.api_base,
                    api_key=self.api_key or self._local_key(), timeout=self.timeout_s, temperature=0.0, num_retries=0, max_retries=0)
            except Exception as e:  # any provider error is a failed score, never a crashed run
                error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                continue
            reply = response.choices[0].message.content or ""
            value = parse_score(reply, self.rubric.max_score)
            if value is None:
                # A reply without a score is the judge's answer, not a transient error: not retried.
                self._fail(i, key, f"the judge's reply has no score from 0 to {self.rubric.max_score:g}",
                           reply[-200:])
                return None
            self._cache[key] = value
            with self.cache_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "score": value}) + "\n")
            return value
        self._fail(i, key, f"the judge call failed after {self.retries + 1} attempts: {error}")
        return None

    def _local_key(self) -> str | None:
        # A local OpenAI-compatible server wants no key, but the OpenAI client refuses to send none.
        return "no-key" if self.api_base else None

    def _fail(self, i: int, key: str, reason: str, reply: str = "") -> None:
        entry = {"time": time.time(), "index": i, "key": key, "reason": reason, "reply": reply}
        self.failures.append(entry)
        with self.failures_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def judge_reward(judge: Judge, reference_column: str = "reference") -> Any:
    """An async TRL reward function that asks `judge` about each completion of a batch."""
    async def judge_score(prompts: Sequence[Any] = (), completions: Sequence[Any] = (),
                          **columns: Any) -> list[float | None]:
        return await judge.score(prompts, completions, columns.get(reference_column))

    judge_score.__name__ = f"judge_{judge.rubric.name}"
    return judge_score


# ---- where the judge is, and whether it answers -----------------------------------------------------------
LOCAL_PREFIX = "lathe/"  # `lathe/ENDPOINT` or `lathe/NAME@N`: a Lathe endpoint of this workspace is the judge
LOCAL_KEY_ENV = "LATHE_JUDGE_API_KEY"  # the worker hands a local judge's key to the recipe through this variable
PROBE_MESSAGE = ("You grade replies.\n\n## The conversation so far\nSay hello.\n\n## The assistant's reply\nHello!\n\n"
                 "## Your grade\nReply with `Score: N` from 0 to 10.")


@dataclass(frozen=True)
class JudgeTarget:
    """What LiteLLM is called with: a model name, the server's base URL (None: the provider's) and a key."""
    model: str
    api_base: str | None
    api_key: str | None
    shown: str  # the judge as the user named it, with its URL

    def key(self) -> str | None:
        # A local OpenAI-compatible server wants no key, but the OpenAI client refuses to send none.
        return self.api_key or ("no-key" if self.api_base else None)


def judge_target(ws: Any, settings: dict[str, Any]) -> JudgeTarget:
    """The judge a job's settings name: `lathe/…` resolves to the workspace's running endpoint (its URL and
    local key from the endpoint store); anything else is a LiteLLM model name, with `judge_api_base`."""
    import os

    model = str(settings.get("judge_model") or "")
    if not model:
        raise UserError("RLAIF needs a judge: set judge_model (a LiteLLM model name such as `openai/gpt-4o-mini`, "
                        "or `lathe/ENDPOINT` for an endpoint of this workspace)")
    if model.startswith(LOCAL_PREFIX):
        return _local_target(ws, model)
    env = settings.get("judge_api_key_env")
    key = os.environ.get(env) if env else None
    if env and not key:
        raise UserError(f"the judge's API key variable `{env}` is not set")
    base = settings.get("judge_api_base")
    return JudgeTarget(model, base, key, f"`{model}`" + (f" at {base}" if base else ""))


def running_endpoints(ws: Any) -> list[Any]:
    """The workspace's endpoints that answer now (a local judge must be one of them)."""
    from runtimes.serving.endpoints.store import EndpointStore

    return [e for e in EndpointStore(ws).list() if e.status in ("running", "idle") and e.url]


def _local_target(ws: Any, model: str) -> JudgeTarget:
    from runtimes.serving.endpoints.store import EndpointStore
    from runtimes.serving.endpoints.deploy import local_key

    name = model[len(LOCAL_PREFIX):]
    endpoints = EndpointStore(ws).list()
    endpoint = next((e for e in endpoints if e.name == name), None)
    served = endpoint.model_ids[0] if endpoint and endpoint.model_ids else None
    if endpoint is None:  # a registered version: the endpoint that serves it
        for e in endpoints:
            for m in e.models:
                ref = str(m.get("ref") or "")
                version = f"{ref.split('@')[0]}@{m.get('version')}" if m.get("version") is not None else None
                if name in (ref, m.get("id"), version):
                    endpoint, served = e, m["id"]
    if endpoint is None or served is None:
        known = ", ".join(f"`{LOCAL_PREFIX}{e.name}`" for e in endpoints) or "none yet"
        raise UserError(f"judge `{model}`: this workspace has no endpoint or served version `{name}` (endpoints: "
                        f"{known}); deploy one with `lathe deploy MODEL --name {name}`")
    if endpoint.status not in ("running", "idle") or endpoint.url is None:
        raise UserError(f"judge `{model}`: endpoint `{endpoint.name}` is {endpoint.status}; start it with "
                        f"`lathe endpoints start {endpoint.name}`")
    return JudgeTarget(f"openai/{served}", endpoint.url, local_key(ws, endpoint.name),
                       f"`{model}` (endpoint `{endpoint.name}` at {endpoint.url})")


def local_judge_settings(ws: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Settings whose `lathe/…` judge is replaced by the endpoint's OpenAI-compatible model, URL and key (through
    `LATHE_JUDGE_API_KEY`), resolved when the trainer is built, so a resumed job finds the endpoint where it is now."""
    import os

    if not str(settings.get("judge_model") or "").startswith(LOCAL_PREFIX):
        return settings
    target = _local_target(ws, str(settings["judge_model"]))
    os.environ[LOCAL_KEY_ENV] = target.api_key or "no-key"
    return {**settings, "judge_model": target.model, "judge_api_base": target.api_base,
            "judge_api_key_env": LOCAL_KEY_ENV}


def probe_judge(target: JudgeTarget, timeout_s: float = 20.0) -> str:
    """One call to the judge before any compute is spent; its reply, or a `UserError` naming the judge and why."""
    import litellm

    try:
        response = litellm.completion(model=target.model, messages=[{"role": "user", "content": PROBE_MESSAGE}],
                                      api_base=target.api_base, api_key=target.key(), timeout=timeout_s,
                                      temperature=0.0, max_tokens=64, num_retries=0, max_retries=0)
    except Exception as e:  # any provider error means the judge cannot score the run
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"the judge {target.shown} does not answer ({type(e).__name__}: {first[:300]}); start it, "
                        "fix judge_model / judge_api_base, or choose another judge before training") from None
    reply = response.choices[0].message.content or ""
    if not reply.strip():
        raise UserError(f"the judge {target.shown} answered with an empty reply; it cannot score completions")
    return reply

"""Which LLM the agent plans with: `[llm]` of lathe.toml, overridden by LATHE_MODEL / LATHE_API_BASE.

Any LiteLLM model string (hosted, Bedrock, Ollama, vLLM, an OpenAI-compatible server) through
`langchain_litellm.ChatLiteLLM`. LiteLLM is imported only when a model is configured; keys are read from
the environment variable named in the settings, never stored in the workspace.
"""
from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import UserError
from core.workspace import Workspace


class LlmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="a LiteLLM model string, e.g. `ollama/llama3.1`, `openai/gpt-4.1`")
    api_base: str | None = Field(None, description="the server's base URL, for local or self-hosted models")
    api_key_env: str | None = Field(None, description="the environment variable that holds the API key")
    temperature: float = Field(0.0, ge=0, le=2)
    timeout_s: float = Field(120.0, gt=0)
    max_tokens: int | None = Field(None, ge=1)
    stream: bool = Field(True, description="stream the planner's text as it is written")

    @property
    def configured(self) -> bool:
        return bool(self.model)


def llm_settings(ws: Workspace) -> LlmSettings:
    raw = dict((ws.settings.model_extra or {}).get("llm", {}) or {})
    for env, key in (("LATHE_MODEL", "model"), ("LATHE_API_BASE", "api_base"), ("LATHE_API_KEY_ENV", "api_key_env")):
        if os.environ.get(env):
            raw[key] = os.environ[env]
    try:
        return LlmSettings.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(x) for x in err["loc"]) or "llm"
        raise UserError(f"{ws.settings_path}: `[llm] {key}`: {err['msg']}") from None


def chat_model(settings: LlmSettings) -> Any:
    """A `ChatLiteLLM` for the configured model."""
    if not settings.model:
        raise UserError("no LLM is configured: set `[llm] model` in lathe.toml or LATHE_MODEL")
    api_key = None
    if settings.api_key_env:
        api_key = os.environ.get(settings.api_key_env)
        if not api_key:
            raise UserError(f"`[llm] api_key_env` names {settings.api_key_env}, which is not set in the environment")
    elif settings.api_base and settings.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
        # OpenAI-compatible local servers (vLLM, llama.cpp, Lathe endpoints) take any key; the client wants one.
        api_key = "not-needed"
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from langchain_litellm import ChatLiteLLM

    return ChatLiteLLM(model=settings.model, api_base=settings.api_base, api_key=api_key,
                       temperature=settings.temperature, request_timeout=settings.timeout_s,
                       max_tokens=settings.max_tokens, streaming=settings.stream, max_retries=0)

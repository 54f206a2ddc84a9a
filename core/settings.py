"""The workspace's settings file, `lathe.toml`, as a pydantic model with defaults for every knob.

Read once per command; unknown sections are kept so later features can add their own.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import UserError


class SqlSettings(BaseModel):
    row_limit: int = Field(10_000, ge=1, description="rows returned by a read query unless it asks for fewer")
    timeout_s: float = Field(30.0, gt=0, description="a read query is interrupted after this many seconds")
    memory_limit: str = Field("4GB", description="DuckDB memory limit for agent and CLI queries")
    threads: int | None = Field(None, ge=1, description="DuckDB threads; the default is every core")


class SearchSettings(BaseModel):
    embedding_model: str | None = Field(
        None, description="a LiteLLM embedding model for dense retrieval beside BM25; none means BM25 alone")
    embedding_api_base: str | None = None


class ClusterSettings(BaseModel):
    ray_address: str | None = Field(
        None, description="a Ray cluster (`ray://head:10001`, or `head:6379` from a node of it) that runs "
                          "fine-tuning jobs with several workers; none means torchrun on this machine")


class Settings(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = "workspace"
    sql: SqlSettings = Field(default_factory=SqlSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)


DEFAULT_TOML = """\
# Lathe workspace settings. Every key is optional; these are the defaults.
name = "{name}"

[sql]
row_limit = 10000     # rows a read query returns at most
timeout_s = 30        # seconds before a read query is interrupted
memory_limit = "4GB"

[search]
# embedding_model = "ollama/nomic-embed-text"   # optional dense retrieval beside BM25

# [llm]
# With no model the agent plans offline (no API key needed). Any LiteLLM model string works, e.g.:
# model = "ollama/llama3.1"                          # a local Ollama
# model = "openai/my-model"                          # an OpenAI-compatible server:
# api_base = "http://127.0.0.1:8000/v1"
# model = "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"
# api_key_env = "OPENAI_API_KEY"                     # the variable that holds the key, if one is needed

# [cluster]
# Fine-tuning jobs with several workers run on this Ray cluster (`pip install lathe-ml[ray]`).
# ray_address = "ray://head:10001"

# [review]
# Steps of these risks wait for an approver; write, compute and deploy always do.
# require_approval = ["write", "compute", "deploy"]
"""


def load_settings(path: Path) -> Settings:
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: malformed TOML: {e}") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(x) for x in err["loc"])
        raise UserError(f"{path}: `{key}`: {err['msg']}") from None

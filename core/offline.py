"""The environment that keeps the libraries Lathe uses offline and out of the home directory.

One list, applied by every entry point (CLI, chat UI, job workers, tests, benchmarks); it never overrides a
value the user set.
"""
from __future__ import annotations

import os

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else litellm downloads its cost map at import
    "MLFLOW_DISABLE_TELEMETRY": "true",      # else mlflow writes a telemetry file in the home directory
    "DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",                   # no hub here: loading from one must fail fast
    "HF_DATASETS_OFFLINE": "1",
    "RAY_AUTH_MODE": "disabled",             # else ray.init() writes a token in the home directory
    "TOKENIZERS_PARALLELISM": "false",       # tokenizers' threads and forked workers do not mix
}


def apply_offline_env() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)

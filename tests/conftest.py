"""Shared test fixtures on real DuckDB files, offline settings: an empty workspace, the small agent workspace, the
demo company with its tiny local models (built once per worker, copied for each module or test that uses it), a
workspace of prompt/completion rows with a tiny model for quick fine-tuning jobs, a small model's shape and the
scripted LLM server."""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.offline import apply_offline_env

apply_offline_env()
# Each xdist worker, and every process it starts (jobs, endpoints, ranks), takes its share of the cores: torch's
# and OpenMP's default of a thread per core in each of them oversubscribes the machine, and spinning threads then
# cost about twice the CPU time for the same work.
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1)
                                                 // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))))

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
EXTERNAL = FIXTURES / "external"
SHARED_DATA = ROOT.parent / "shared" / "data"
pytest_plugins = ["tests.file_order"]


@pytest.fixture
def workspace(tmp_path):
    """A new, empty workspace (settings, warehouse file, catalog folders, state database)."""
    from core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.create()
    return ws


@pytest.fixture
def small_ws(workspace):
    """customers, orders, an unrelated table, their catalog entries and a `revenue` metric (tests/small_workspace.py)."""
    from tests.small_workspace import build_small_workspace

    build_small_workspace(workspace)
    return workspace


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """The scripted LLM (a real OpenAI-compatible server on loopback), configured for the test as the agent's LLM."""
    from tests.scripted_llm import ScriptedLLM

    with ScriptedLLM() as server:
        monkeypatch.setenv("LATHE_MODEL", "openai/scripted")
        monkeypatch.setenv("LATHE_API_BASE", server.url)
        yield server


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo company (scale 0.1) with its tiny local models, built once per worker. Never written: the
    fixtures below hand out copies."""
    from catalog.workspace_setup import init_workspace
    from core.workspace import Workspace
    from runtimes.training.tiny_models import install_demo_models

    ws = Workspace(tmp_path_factory.mktemp("demo-template") / "ws")
    init_workspace(ws, demo=True, scale=0.1)
    install_demo_models(ws)
    return ws.root


def copy_workspace(template: Path, parent: Path):
    """A workspace copied from `template` into `parent`/ws (a workspace holds no absolute paths)."""
    from core.workspace import Workspace

    return Workspace(Path(shutil.copytree(template, parent / "ws")))


@pytest.fixture(scope="module")
def module_demo(demo_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the demo workspace shared by one module's tests."""
    return copy_workspace(demo_template, tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def gsm8k_demo(module_demo):
    """The module's demo workspace with GSM8K imported from the shared data folder (skipped where it is absent)."""
    from runtimes.training.datasets.shared_data import GSM8K_FILE, import_gsm8k, shared_data_dir

    if not (shared_data_dir() / GSM8K_FILE).exists():
        pytest.skip("GSM8K is not in the shared data folder")
    import_gsm8k(module_demo)
    return module_demo


@pytest.fixture
def demo_ws(demo_template: Path, tmp_path: Path):
    """A copy of the demo workspace for one test."""
    return copy_workspace(demo_template, tmp_path)


@pytest.fixture(scope="session")
def demos_workspace(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Any]:
    """Builds an empty workspace with table `demos` (`rows` prompt/completion rows about orders) and a tiny Qwen3
    model `tiny` trained on their words, for fine-tuning jobs that run in seconds."""
    import json

    from catalog.importers import import_paths
    from core.workspace import Workspace
    from runtimes.training.tiny_models import build_tiny_model

    def build(rows: int) -> Workspace:
        root = tmp_path_factory.mktemp("demos")
        ws = Workspace(root / "ws")
        ws.create()
        data = [{"prompt": f"Where is order {i}?", "completion": f"Order {i} ships on day {i % 7}."} for i in range(rows)]
        f = root / "demos.jsonl"
        f.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
        import_paths(ws, [f])
        build_tiny_model("qwen3", ws.root / "models" / "base" / "tiny", [r["prompt"] + " " + r["completion"] for r in data],
                         hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=320)
        return ws

    return build



@pytest.fixture(scope="session")
def shape(tmp_path_factory: pytest.TempPathFactory):
    """The shape (`ModelShape`) of a small Llama (4 layers, hidden 512) saved with random weights, for the
    automatic configuration's memory arithmetic."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from runtimes.training.memory_estimate import ModelShape

    cfg = AutoConfig.for_model("llama", vocab_size=2000, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                               num_key_value_heads=4, intermediate_size=1408, max_position_embeddings=1024)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "tiny-llama"
    AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    return ModelShape.from_pretrained(path)

def external(name: str) -> Path:
    """A real project shipped by a package, unpacked by `make fixtures`."""
    p = EXTERNAL / name
    if not p.exists():
        pytest.fail(f"{p} is missing: run `make fixtures` (it unpacks the MetricFlow sample projects)")
    return p

"""The house holds: every module of every layer imports on its own, and no module imports from a layer above its
own (core ← catalog ← runtimes ← tools ← agent ← front-ends), read from the source with `ast`."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "catalog", "runtimes", "tools", "agent", "cli")  # lowest first; app.py stands above them all


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file, including those inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for name, path in _modules():
        own = LAYERS.index(name.split(".")[0])
        for line, module in _imported(path):
            top = module.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not upward, "\n".join(upward)


def test_every_module_imports_on_its_own():
    """A name removed from one module but still imported by another shows here, not first in a running app."""
    names = [name for name, _ in _modules()]
    script = ("import importlib, sys, traceback\nbad = []\nfor n in sys.argv[1:]:\n    try:\n"
              "        importlib.import_module(n)\n    except Exception:\n"
              "        bad.append(n + ': ' + traceback.format_exc(limit=1).strip().splitlines()[-1])\n"
              "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    from tests.waiting import run

    done = run([sys.executable, "-c", script, *names], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]

"""A reward that runs a completion's Python code against unit tests in a sandboxed subprocess.

The child runs isolated (`python -I -S`) in a fresh temporary folder, with a minimal environment (no proxies,
no keys, no home), CPU-time, address-space, file-size and open-file limits, in its own process group
that is killed on timeout. It must never run model output in this process or with this process's env.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtimes.training.rewards.verifiable import RewardFunction, _column, _named, completion_text

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 5.0
    memory_mb: int = 256
    max_file_mb: int = 8
    max_open_files: int = 64


@dataclass(frozen=True)
class TestRun:
    passed: bool
    reason: str  # "passed", "failed", "timed out", "memory limit", "crashed (signal N)"
    output: str  # the last lines of stderr/stdout, for the run's log


def extract_code(text: str) -> str:
    """The code in a completion: its last fenced Python block, else the whole text."""
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else text


# The child sets its own limits before it runs the program: `preexec_fn` is unsafe in a process with
# threads (a training run has several), so nothing runs between fork and exec here.
_LAUNCHER = """
import resource, runpy, sys
program, mem, cpu, fsize, nofile = sys.argv[1], *map(int, sys.argv[2:6])
for limit, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_FSIZE, fsize),
                     (resource.RLIMIT_NOFILE, nofile), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(limit, (value, value))
sys.argv = [program]
runpy.run_path(program, run_name="__main__")
"""


def _command(program: Path, limits: SandboxLimits) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(program), str(limits.memory_mb * 1024 * 1024),
            str(max(1, int(limits.timeout_s) + 1)), str(limits.max_file_mb * 1024 * 1024),
            str(limits.max_open_files)]


def run_python_tests(code: str, tests: str, limits: SandboxLimits = SandboxLimits()) -> TestRun:
    """Run `code` followed by `tests` (asserts, or any code that raises on failure) in the sandbox."""
    with tempfile.TemporaryDirectory(prefix="lathe-sandbox-") as tmp:
        program = Path(tmp) / "program.py"
        program.write_text(f"{code}\n\n# --- tests ---\n{tests}\n", encoding="utf-8")
        # Only what the interpreter needs: no proxy or credential variables reach model-written code.
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "no_proxy": "*"}
        proc = subprocess.Popen(_command(program, limits), cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return TestRun(False, "timed out", _tail(out, err))
    tail = _tail(out, err)
    if proc.returncode == 0:
        return TestRun(True, "passed", tail)
    if proc.returncode < 0:
        sig = -proc.returncode
        reason = "timed out" if sig in (signal.SIGXCPU, signal.SIGKILL) else f"crashed (signal {sig})"
        return TestRun(False, reason, tail)
    if "MemoryError" in tail:
        return TestRun(False, "memory limit", tail)
    return TestRun(False, "failed", tail)


def _tail(out: bytes, err: bytes, lines: int = 5) -> str:
    text = (err or out or b"").decode("utf-8", "replace").strip().splitlines()
    return "\n".join(text[-lines:])


def python_tests(tests_column: str = "tests", limits: SandboxLimits = SandboxLimits(),
                 workers: int = 2) -> RewardFunction:
    """1 when the completion's code passes the row's tests (the `tests_column` column), else 0."""
    def reward(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float | None]:
        tests = _column(columns, tests_column, len(completions), "python_tests")
        codes = [extract_code(completion_text(c)) for c in completions]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            runs = list(pool.map(lambda ct: run_python_tests(ct[0], str(ct[1]), limits), zip(codes, tests)))
        return [float(r.passed) for r in runs]
    return _named(reward, "python_tests")

"""Benchmark of `lathe chat` starting: the seconds from launching the command to its first prompt, and to the
end of a chat that answers one typed SQL question, in a fresh process each time (as a person starts it), on a
small demo workspace made in a temporary folder; with the heaviest imports of the agent the chat loads.

    .venv/bin/python bench/chat_start.py [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    for k in ("LATHE_MODEL", "LATHE_API_BASE", "LATHE_API_KEY_ENV"):
        env.pop(k, None)
    return env


def _timed_chat(ws: Path, lines: str) -> tuple[float, float]:
    """(seconds to the first `you>` prompt, seconds until the chat ended after `lines`)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-u", "-m", "cli.main", "--workspace", str(ws), "chat"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(),
                            cwd=ROOT)
    assert proc.stdout is not None and proc.stdin is not None
    seen = b""
    while b"you> " not in seen:
        byte = proc.stdout.read(1)
        if not byte:
            raise SystemExit(f"lathe chat ended before its prompt:\n{seen.decode()[-2000:]}")
        seen += byte
    prompt = time.perf_counter() - t
    rest, _ = proc.communicate(lines.encode(), timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"lathe chat failed ({proc.returncode}):\n{(seen + rest).decode()[-2000:]}")
    return prompt, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([sys.executable, "-m", "cli.main", "--workspace", str(ws), "init", "--demo", "--scale", "0.05",
                        "--no-models"], check=True, capture_output=True, env=_env(), cwd=ROOT)
        _timed_chat(ws, "/quit\n")  # a warm file cache, as on a second start
        runs = [_timed_chat(ws, "SELECT count(*) AS n FROM orders\n/quit\n") for _ in range(args.runs)]
        start, first = [p for p, _ in runs], [a for _, a in runs]
        imports = subprocess.run([sys.executable, "-X", "importtime", "-c", "import cli.chat.terminal, agent.session"],
                                 capture_output=True, text=True, env=_env(), cwd=ROOT).stderr.splitlines()
    cumulative = sorted(((int(line.split("|")[1]), line.split("|")[2].strip()) for line in imports
                         if line.startswith("import time:") and line.split("|")[1].strip().isdigit()), reverse=True)
    print(f"lathe chat to its first prompt: median {statistics.median(start):.2f} s over {args.runs} runs "
          f"(min {min(start):.2f})")
    print(f"lathe chat to one SQL answer and /quit: median {statistics.median(first):.2f} s (the agent loads while "
          f"the prompt waits)")
    print("heaviest imports of the agent, loaded behind the prompt (cumulative s):",
          ", ".join(f"{name} {us / 1e6:.2f}" for us, name in cumulative[:6]))


if __name__ == "__main__":
    main()

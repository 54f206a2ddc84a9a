"""`lathe ui`: the chat UI (Chainlit, `app.py`) on the workspace; makes the demo workspace first if none exists.

Chainlit runs with the workspace's `ui/` folder as its app root, so its config, uploads and chat history
stay in the workspace and never in the repository or the current directory.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from core.offline import OFFLINE_ENV
from cli.context import command, workspace

APP = Path(__file__).resolve().parent.parent / "app.py"

def ui_root(ws_root: Path) -> Path:
    """The folder Chainlit treats as its app root: `<workspace>/ui`."""
    return ws_root / "ui"


def chainlit_command(ws_root: Path, host: str, port: int, base_env: dict[str, str] | None = None
                     ) -> tuple[list[str], dict[str, str], Path]:
    """(argv, environment, working directory) that run the app on `ws_root`; used by `lathe ui` and tests."""
    root = ui_root(ws_root)
    root.mkdir(parents=True, exist_ok=True)
    env = {**OFFLINE_ENV, **(os.environ if base_env is None else base_env)}  # a value the user set wins
    env.update({"LATHE_HOME": str(ws_root), "CHAINLIT_APP_ROOT": str(root)})
    argv = [sys.executable, "-m", "chainlit", "run", str(APP), "--headless", "--host", host, "--port", str(port)]
    return argv, env, root


def register(app: typer.Typer) -> None:
    @app.command("ui")
    @command
    def ui(
        port: int = typer.Option(8000, "--port", "-p", min=1, max=65535, help="Port to listen on."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: this machine only)."),
    ) -> None:
        """Open the chat UI in the browser: ask questions, review and approve plans, upload CSV or Parquet."""
        ws = workspace(require=False)
        if not ws.exists:
            from catalog.workspace_setup import init_workspace

            typer.echo(f"No workspace at {ws.root}: creating one with the demo company…")
            init_workspace(ws, demo=True)
            # The demo's tiny base models are only needed for fine-tuning: build them at low priority beside
            # the starting UI rather than before it, so the first answer is not kept waiting.
            subprocess.Popen([sys.executable, "-m", "runtimes.training.tiny_models", str(ws.root)],
                             start_new_session=True, preexec_fn=lambda: os.nice(15),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from runtimes.jobs.lifecycle import recover

        # Jobs whose process died while Lathe was down resume from what they saved, without asking.
        for job_id in recover(ws):
            typer.echo(f"resuming job {job_id} from what it saved")
        argv, env, cwd = chainlit_command(ws.root, host, port)
        typer.echo(f"Lathe UI on http://{host}:{port} (workspace {ws.root}); Ctrl-C stops it.")
        os.chdir(cwd)
        # Replaced by Chainlit's process, so Ctrl-C and signals reach the server directly.
        os.execve(argv[0], argv, env)

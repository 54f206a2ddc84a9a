"""`lathe`: the command-line entry point; wires the sub-commands and the global `--workspace` option.

Imports only Typer here: each command imports what it needs when it runs, so `lathe --help` is fast.
"""
from __future__ import annotations

import typer

from cli import (batch_commands, catalog_commands, finetune_command, init_command, model_merge_command,
                 monitor_command, query_command, scheduler_command, serve_commands, sql_command, tour_command,
                 ui_command)
from cli.chat import command as chat_command
from cli import slack_command, users_command
from cli import features_command
from cli import train_command
from core.offline import apply_offline_env
from cli.context import set_workspace

# Offline by default: no cost-map download, no telemetry files in the home directory, no hub access.
apply_offline_env()

app = typer.Typer(
    name="lathe",
    help="Lathe: ask your data, fine-tune, deploy and watch models on your own hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    workspace: str | None = typer.Option(
        None, "--workspace", "-w", envvar="LATHE_HOME",
        help="Workspace directory (default: $LATHE_HOME, else ./workspace).", show_default=False),
) -> None:
    set_workspace(workspace)


init_command.register(app)
catalog_commands.register(app)
sql_command.register(app)
query_command.register(app)
tour_command.register(app)
ui_command.register(app)
chat_command.register(app)
users_command.register(app)
slack_command.register(app)
finetune_command.register(app)
model_merge_command.register(finetune_command.models_app)
monitor_command.register(app)
scheduler_command.register(app)
serve_commands.register(app)
batch_commands.register(app)
features_command.register(app)
train_command.register(app)

if __name__ == "__main__":
    app()

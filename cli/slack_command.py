"""`lathe slack`: run the Slack bot for this workspace, in Socket Mode (no public URL needed) or as an HTTP
events endpoint (`--http`), with the tokens from the environment variables `[slack]` in lathe.toml names.
"""
from __future__ import annotations

import typer

from cli.context import command, workspace


def register(app: typer.Typer) -> None:
    app.command("slack")(command(slack))


def slack(http: bool = typer.Option(False, "--http", help="Serve Slack's events at POST /slack/events instead of "
                                    "Socket Mode (needs SLACK_SIGNING_SECRET; Slack must reach the URL)."),
          host: str = typer.Option("127.0.0.1", "--host", help="With --http: the address to listen on."),
          port: int = typer.Option(3000, "--port", help="With --http: the port.")) -> None:
    """Run the Slack bot: mentions, DMs and /lathe go through the same agent, plans get Approve/Reject/Edit buttons."""
    from agent.channels.slack import SlackBot

    bot = SlackBot(workspace(), socket_mode=not http)
    if http:
        import uvicorn

        typer.echo(f"Slack events at http://{host}:{port}/slack/events (Ctrl-C stops)")
        bot.start_alerts()
        uvicorn.run(bot.http_app(), host=host, port=port, log_level="warning")
    else:
        typer.echo("Connected to Slack in Socket Mode (Ctrl-C stops)")
        bot.start_socket_mode()

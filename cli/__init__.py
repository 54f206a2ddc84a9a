"""The `lathe` command line: a thin front-end over catalog/ and runtimes/ (and, later, the agent)."""

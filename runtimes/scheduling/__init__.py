"""Scheduling: work that runs on a schedule (monitors today, pipelines later), by APScheduler with its job store in
the workspace (`scheduler.sqlite`), inside the UI process or the standalone `lathe scheduler`.
"""

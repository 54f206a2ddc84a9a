"""Monitoring of served models: traffic capture, LLM traffic features, drift tests, baselines, monitors and alerts.

Usable on its own (CLI, Python); it never imports `tools/` or `agent/`.
"""

"""Endpoints: deploying registered versions, each endpoint's process and OpenAI-compatible HTTP API, its store,
API keys, request capture, and the client `lathe invoke` and the agent call it with.
"""

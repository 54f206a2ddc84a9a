"""Serving: registered model versions behind an OpenAI-compatible API, batch transform and async inference."""

"""Reward functions for GRPO recipes: verifiable checks, sandboxed Python tests, weighted combinations and
an LLM judge. Every reward takes TRL's `(prompts, completions, **columns)` and returns one float (or None:
no score) per completion; none of them imports torch or trl.
"""

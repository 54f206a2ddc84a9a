"""The LLM judge (LiteLLM, or a Lathe endpoint on this machine) with its rubrics: RLAIF rewards, evaluation
win rates and monitoring's quality checks all score through it.
"""

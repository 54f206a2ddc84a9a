"""The kinds of question the offline planner reads, one module each with `match` and `plan` (see
`agent/planners/intent_registry.py`).
"""

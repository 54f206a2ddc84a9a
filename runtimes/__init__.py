"""The work itself: training, serving and monitoring runtimes, each `Spec` → `plan(spec)` → `run(plan)`.

Runtimes may import `catalog/`; they never import `tools/`, `agent/` or the front-ends, and never need an LLM.
"""

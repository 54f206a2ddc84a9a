"""The agent's hands: typed LangChain tools, thin wrappers over `catalog/` and `runtimes/`.

Each module defines tools (`LatheTool` subclasses) that `tools.registry` finds; nothing here imports `agent/`.
"""

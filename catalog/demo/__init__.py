"""The generated demo company (`lathe init --demo`): its data, business metadata, texts and semantic layer.
Deterministic from a seed, so every feature can be tried and tested on the same workspace.
"""

"""The semantic layer: MetricFlow's YAML (semantic models, metrics) compiled to sqlglot trees for DuckDB.

Pure functions over parsed specs and trees; it never runs SQL itself except through the warehouse it is given.
"""

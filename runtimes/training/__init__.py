"""Guided model customization: model families, local and hub models, datasets from the catalog, recipes.

Importing this package stays cheap: torch, transformers, trl and datasets are imported inside functions,
never at module import, so front-ends that load it at start stay fast.
"""

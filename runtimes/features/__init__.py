"""The feature store: feature views defined as YAML in the catalog, versioned, joined point-in-time correct into
training sets in DuckDB, and materialized into an online store for reads by entity key."""

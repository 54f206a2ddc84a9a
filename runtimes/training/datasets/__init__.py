"""Training datasets from the catalog: a table or a safe SQL query, its format detected, its rows checked,
then split, de-duplicated, optionally scrubbed of PII, hashed and shaped as TRL expects per technique.

`plan_dataset(ws, spec)` reads and checks without writing anything; `prepare(plan)` builds the datasets.
"""

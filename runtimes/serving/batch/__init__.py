"""Batch transform: a served model over a catalog table or a read query, written back as a catalogued table.
"""

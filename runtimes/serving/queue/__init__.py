"""Asynchronous inference: a request queue in the workspace, worker processes that claim and answer under a
lease, and webhook delivery of results.
"""

"""The foundation every layer stands on: the workspace and its settings, errors, the state database, the offline
environment and the principal a request runs as. It imports nothing else of Lathe's.
"""

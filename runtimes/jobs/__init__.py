"""One job system for every long piece of work: one table (store.py), the kinds (kinds.py), one lifecycle
(lifecycle.py) and one worker process (worker.py)."""

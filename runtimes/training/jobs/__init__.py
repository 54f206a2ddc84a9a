"""Training jobs: each run is a process of its own with a row in the workspace state database, events,
metrics, checkpoints, cancel and resume, and recovery of jobs whose process died."""

"""Fine-tuning as a kind of job (finetune_kind.py): its spec, trainer, progress callback and signal check; the job
itself (store, lifecycle, worker process) is runtimes/jobs/'s."""

"""Classic machine learning on catalog tables: a labelled frame from the warehouse and the feature store, a plan
(task, split, baseline, search space, budget), Optuna tuning tracked in MLflow, a held-out report and a registered
version. The `train` job kind ties them to the one job system."""

# Set-up, run and test. `make run` and `make test` create .venv and install everything on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
WORKSPACE ?= workspace
PORT ?= 8000

# Keep libraries offline and out of the home directory.
export LITELLM_LOCAL_MODEL_COST_MAP := True
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export RAY_AUTH_MODE := disabled
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/torchinductor

.PHONY: run test test-fast install fixtures mf-env bytecode clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	# torch first, pinned: an open range pulls several GB of CUDA wheels on a CPU machine.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	# uv resolves chainlit's large tree in seconds where pip backtracks for many minutes. It writes no bytecode
	# unless asked, and where PYTHONDONTWRITEBYTECODE is set nothing else does: every process (a job, an
	# endpoint, a CLI call) would compile torch's, transformers' and MLflow's sources again as it imports them.
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $@

# Real MetricFlow projects written by others, taken from the packages that ship them (tests read them).
FIXTURES := tests/fixtures/external
fixtures: $(FIXTURES)/.done
$(FIXTURES)/.done: | $(VENV)/.installed
	rm -rf $(FIXTURES) && mkdir -p $(FIXTURES)/wheels
	$(BIN)/pip download -q --no-deps -d $(FIXTURES)/wheels dbt-metricflow==0.15.0 metricflow==0.213.0
	cd $(FIXTURES) && $(CURDIR)/$(BIN)/python -m zipfile -e wheels/dbt_metricflow-0.15.0-py3-none-any.whl dbt_metricflow_pkg
	cd $(FIXTURES) && $(CURDIR)/$(BIN)/python -m zipfile -e wheels/metricflow-0.213.0-py3-none-any.whl metricflow_pkg
	mv $(FIXTURES)/dbt_metricflow_pkg/dbt_metricflow/cli/sample_dbt_models $(FIXTURES)/mf_tutorial
	mv $(FIXTURES)/metricflow_pkg/metricflow_semantics/test_helpers/semantic_manifest_yamls $(FIXTURES)/mf_manifests
	rm -rf $(FIXTURES)/wheels $(FIXTURES)/dbt_metricflow_pkg $(FIXTURES)/metricflow_pkg
	touch $@

# MetricFlow itself, in its own environment (its pins are not ours), for the differential test of the
# semantic layer (tests/test_semantic_metricflow.py); the same DuckDB as ours reads the same files.
MF_VENV := .venv-mf
mf-env: $(MF_VENV)/.installed
$(MF_VENV)/.installed: | $(VENV)/.installed
	test -x $(MF_VENV)/bin/python || $(PYTHON) -m venv $(MF_VENV)
	$(BIN)/uv pip install -q --compile-bytecode --python $(MF_VENV)/bin/python metricflow==0.213.0 pyyaml \
		duckdb==$$($(BIN)/python -c "import duckdb; print(duckdb.__version__)")
	touch $@

# The tour is printed once, when the demo workspace is made; later starts print only where the UI is.
run: install
	@test -f $(WORKSPACE)/lathe.toml || ($(BIN)/lathe --workspace $(WORKSPACE) init --demo && \
		$(BIN)/lathe --workspace $(WORKSPACE) tour)
	@$(BIN)/lathe --workspace $(WORKSPACE) ui --port $(PORT)

# The project's own bytecode, for the same reason (the tests start several hundred processes).
bytecode:
	$(BIN)/python -m compileall -q -j 0 -x '/(\.venv|\.venv-mf|tests/fixtures|workspace)/' .

# Two workers, a test file each at a time (module fixtures stay whole): the suite is mostly CPU-bound training.
test: install fixtures mf-env bytecode
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# The inner loop: the same, less the tests marked `slow` (real training jobs, servers, the browser).
test-fast: install fixtures mf-env bytecode
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not slow"

clean:
	rm -rf $(VENV) $(MF_VENV) $(FIXTURES) .cache

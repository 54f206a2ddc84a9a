"""Differential test: Lathe's semantic layer against MetricFlow itself (its own Python API, in the `.venv-mf`
environment that `make mf-env` makes) on the same DuckDB data, for every metric of MetricFlow's tutorial and
test projects by a deterministic sample of group-bys and filters. Where both answer, the rows must be equal.
"""
from __future__ import annotations

import pytest

from tests.metricflow_diff import MF_PYTHON, all_projects, compare

pytestmark = pytest.mark.slow


def test_lathe_and_metricflow_give_the_same_rows(tmp_path):
    if not MF_PYTHON.exists():
        pytest.fail(f"{MF_PYTHON} is missing: run `make mf-env` (MetricFlow in its own environment)")
    out = compare(all_projects(tmp_path), tmp_path)
    assert not out.differences, "\n".join(out.differences[:20])
    assert out.compared >= 300 and out.agree == out.compared
    # Lathe refuses (with a message) only a few of the queries MetricFlow answers
    assert out.lathe_refused <= out.compared // 20

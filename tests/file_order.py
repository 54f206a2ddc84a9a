"""Runs the test files longest first, so that the two workers of `make test` finish together: xdist hands out whole
files in collection order, and a long file drawn last would run alone at the end.

The order comes from `tests/file_seconds.json` (seconds per file, from a recent run); a run with
`LATHE_RECORD_FILE_SECONDS=1` writes it again. A file missing from it runs after the known ones.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

SECONDS = Path(__file__).with_name("file_seconds.json")
_measured: Counter[str] = Counter()


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = json.loads(SECONDS.read_text()) if SECONDS.exists() else {}
    items.sort(key=lambda item: -known.get(_file(item.nodeid), 0.0))  # stable: a file's own order stays


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _measured[_file(report.nodeid)] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Only the controller (with xdist) sees every file's reports; a run that selected some files keeps the others.
    if not os.environ.get("LATHE_RECORD_FILE_SECONDS") or hasattr(session.config, "workerinput"):
        return
    known = json.loads(SECONDS.read_text()) if SECONDS.exists() else {}
    known.update({name: round(seconds, 1) for name, seconds in _measured.items()})
    SECONDS.write_text(json.dumps(dict(sorted(known.items(), key=lambda kv: -kv[1])), indent=0) + "\n")

"""DuckDB connections to the workspace's warehouse: a sandboxed reader and a trusted writer.

The reader is what every user- or LLM-supplied query runs on: read-only, no file system, no
extension installs, configuration locked, all by DuckDB's own settings. Connections are short-lived:
DuckDB refuses two differently configured connections to one file in one process.
"""
from __future__ import annotations

import os
import threading
import time

try:
    import resource
except ImportError:  # not on Windows: the watchdog's memory poll still holds
    resource = None  # type: ignore[assignment]
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from core.errors import UserError
from core.workspace import Workspace


def _offline_config(ws: Workspace) -> dict[str, object]:
    ext = ws.cache_dir / "duckdb_extensions"
    ext.mkdir(parents=True, exist_ok=True)
    sql = ws.settings.sql
    cfg: dict[str, object] = {
        # Built-in extensions only; a failed install must never write to the home directory.
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "extension_directory": str(ext),
        "memory_limit": sql.memory_limit,
    }
    if sql.threads:
        cfg["threads"] = sql.threads
    return cfg


def reader_config(ws: Workspace) -> dict[str, object]:
    return {
        **_offline_config(ws),
        "access_mode": "READ_ONLY",
        "enable_external_access": False,  # no files, no ATTACH, no COPY, no INSTALL
        "allow_persistent_secrets": False,
        "lock_configuration": True,  # SET / PRAGMA cannot undo any of the above
    }


@contextmanager
def connect_reader(ws: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """The sandbox for untrusted SQL: read-only, no file system, settings locked."""
    ws.require()
    con = duckdb.connect(str(ws.warehouse_path), config=reader_config(ws))
    try:
        yield con
    finally:
        con.close()


@contextmanager
def connect_writer(ws: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection for Lathe's own trusted code paths (imports, demo data, approved writes)."""
    spill = ws.cache_dir / "duckdb_tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(ws.warehouse_path), config={**_offline_config(ws), "temp_directory": str(spill)})
    try:
        yield con
    finally:
        con.close()


class QueryTimeout(UserError):
    pass


class QueryTooLarge(UserError):
    pass


_POLL_S = 0.05
_MIN_GROWTH = 256 * 2**20  # bytes a query may grow the process by, at least (DuckDB's own buffers, Python rows)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _rss_bytes() -> int | None:
    """This process's resident memory, or None where /proc is not there (the engine's own limit still holds)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def parse_size(text: str) -> int | None:
    """Bytes in a DuckDB size setting ("4GB", "95.3 MiB"); None where it is not one."""
    parts = text.strip().lower().replace(" ", "")
    number = parts.rstrip("abcdefghijklmnopqrstuvwxyz")
    try:
        return int(float(number) * _UNITS[parts[len(number):] or "b"])
    except (ValueError, KeyError):
        return None


class _Watchdog:
    """Interrupts the statement running on `con` at its deadline, or when the process has grown past `growth`
    bytes since it started: DuckDB counts only its own buffers against memory_limit, not every value a
    function makes, and checks interrupts only between chunks of work."""

    def __init__(self, con: duckdb.DuckDBPyConnection, timeout_s: float, growth: int | None):
        self.con, self.timeout_s, self.growth = con, timeout_s, growth
        self.reason: str | None = None
        self._stop = threading.Event()
        self._base = _rss_bytes()
        self._thread = threading.Thread(target=self._watch, name="lathe-query-watchdog", daemon=True)

    def __enter__(self) -> "_Watchdog":
        self._deadline = time.monotonic() + self.timeout_s
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()  # no interrupt can land on the connection's next statement

    def _watch(self) -> None:
        while not self._stop.wait(_POLL_S):
            if time.monotonic() >= self._deadline:
                self.reason = "timeout"
            elif self.growth and self._base is not None and (_rss_bytes() or 0) - self._base > self.growth:
                self.reason = "memory"
            if self.reason:
                self.con.interrupt()
                return


class _DataCap:
    """A process-level cap on heap growth (RLIMIT_DATA) while queries run, where the engine cannot enforce its
    own: a value made in one vectorised call is allocated outside DuckDB's buffer manager. Past the cap an
    allocation fails and DuckDB answers with an out-of-memory error; the process itself is left healthy.
    Nested and concurrent queries raise the cap by their own share and the last one out restores it."""

    _lock = threading.Lock()
    _active = 0
    _saved: tuple[int, int] | None = None

    def __init__(self, growth: int | None):
        self.growth = growth
        self.applied = False

    def __enter__(self) -> "_DataCap":
        if not self.growth or resource is None or (used := _data_bytes()) is None:
            return self
        cls = type(self)
        with cls._lock:
            soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
            base = used if cls._active == 0 else soft
            limit = base + self.growth if hard == resource.RLIM_INFINITY else min(base + self.growth, hard)
            try:
                resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
            except (ValueError, OSError):
                return self
            if cls._active == 0:
                cls._saved = (soft, hard)
            cls._active += 1
            self.applied = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.applied:
            return
        cls = type(self)
        with cls._lock:
            cls._active -= 1
            if cls._active == 0 and cls._saved is not None:
                resource.setrlimit(resource.RLIMIT_DATA, cls._saved)
                cls._saved = None


def _data_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _allowed_growth(con: duckdb.DuckDBPyConnection) -> int | None:
    limit = parse_size(str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0]))
    return max(2 * limit, _MIN_GROWTH) if limit else None


def fetch_with_timeout(con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float,
                       max_rows: int | None = None) -> tuple[list[str], list[tuple], bool]:
    """Run one statement under the watchdog: interrupted after `timeout_s`, or stopped once it needs more than
    twice DuckDB's memory_limit (a heap cap, and a poll of the resident size where the cap is not enforced).
    Returns columns, rows and whether rows were cut."""
    growth = _allowed_growth(con)
    watchdog = _Watchdog(con, timeout_s, growth)
    too_large = (f"query stopped: it needed more than {(growth or 0) / 2**20:,.0f} MiB of memory (twice the [sql] "
                 "memory_limit of lathe.toml); aggregate or filter to make less at once")
    try:
        with _DataCap(growth), watchdog:
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description] if cur.description else []
            if max_rows is None:
                rows, cut = cur.fetchall(), False
            else:
                rows = cur.fetchmany(max_rows + 1)
                cut = len(rows) > max_rows
                rows = rows[:max_rows]
        return columns, rows, cut
    except (duckdb.OutOfMemoryException, MemoryError):
        raise QueryTooLarge(too_large) from None
    except duckdb.InterruptException:
        if watchdog.reason == "memory":
            raise QueryTooLarge(too_large) from None
        raise QueryTimeout(f"query interrupted after {timeout_s:g} s (the [sql] timeout_s setting of lathe.toml)") from None

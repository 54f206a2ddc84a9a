"""`lathe catalog import` through Typer's runner: what changed as lines or JSON, errors as one line."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app
from tests.conftest import FIXTURES

IMPORT = FIXTURES / "import"


def test_import_prints_what_changed(workspace):
    r = CliRunner().invoke(app, ["--workspace", str(workspace.root), "catalog", "import", str(IMPORT / "shop")])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        f"table customers: created, 4 rows, 4 columns (from {IMPORT / 'shop' / 'customers.ndjson'})",
        f"table orders: created, 5 rows, 5 columns (from {IMPORT / 'shop' / 'orders.csv'})",
    ]
    again = ["--workspace", str(workspace.root), "catalog", "import", str(IMPORT / "dbt" / "schema.yml"),
             str(IMPORT / "shop" / "orders.csv")]
    r = CliRunner().invoke(app, again)
    assert r.exit_code == 2 and "table `orders` already exists in the warehouse" in r.output  # --replace says so
    r = CliRunner().invoke(app, [*again, "--replace"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("table orders: replaced, 5 rows")
    assert lines[1] == f"metadata (dbt) {IMPORT / 'dbt' / 'schema.yml'}: 2 table(s)"
    assert lines[2].startswith("warning: ") and "stg_payments" in lines[2]


def test_import_json(workspace):
    r = CliRunner().invoke(app, ["--workspace", str(workspace.root), "catalog", "import", "--json",
                                 str(IMPORT / "shop" / "orders.csv"), str(IMPORT / "lathe")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [(t["name"], t["rows"], t["columns"]) for t in out["tables"]] == [("orders", 5, 5)]
    assert out["metadata"][0]["glossary"] == ["revenue"]
    assert out["semantic"] == [] and len(out["warnings"]) == 1


def test_import_errors_are_one_line_and_exit_2(workspace, tmp_path):
    missing = tmp_path / "nope.csv"
    r = CliRunner().invoke(app, ["--workspace", str(workspace.root), "catalog", "import", str(missing)])
    assert r.exit_code == 2
    assert r.stderr == f"error: {missing}: no such file or directory\n"
    assert r.stdout == ""

    r = CliRunner().invoke(app, ["--workspace", str(tmp_path / "no-workspace"), "catalog", "import",
                                 str(IMPORT / "shop")])
    assert r.exit_code == 2 and "no Lathe workspace" in r.stderr


def test_a_catalog_folder_of_many_files_is_summed_up():
    from catalog.importers.report import ImportReport, MetadataImport

    report = ImportReport(metadata=[MetadataImport(path=f"t{i}.yml", format="lathe", tables=[f"t{i}"])
                                    for i in range(25)])
    lines = report.lines()
    assert lines[0] == "metadata (lathe) t0.yml: 1 table(s)"
    assert lines[20:] == ["metadata: 5 more file(s), 5 more table(s)"]

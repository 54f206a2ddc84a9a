"""`lathe features import`: Feast feature repositories, written as Feast's documentation writes them (the
quickstart's driver stats repo; several entities, files importing each other, aliases and older argument names),
read into feature view YAML without running their code; what has no Lathe equivalent is refused at its line."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from catalog.warehouse import connect_writer
from cli.main import app
from core.errors import UserError
from runtimes.features.feast_import import read_feast_repo
from runtimes.features.offline_store import training_set
from runtimes.features.registry import apply
from tests.features_workspace import at


def repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


# The quickstart's repository (`feast init`): one driver entity, a Parquet file source, a feature view over it,
# and beside it constructs without a Lathe equivalent (on-demand views over request data, feature services).
QUICKSTART = {
    "feature_store.yaml": """
        project: my_project
        registry: data/registry.db
        provider: local
        online_store:
          type: sqlite
          path: data/online_store.db
        """,
    "example_repo.py": """
        # Feature definitions for the driver example
        from datetime import timedelta

        import pandas as pd

        from feast import (
            Entity,
            FeatureService,
            FeatureView,
            Field,
            FileSource,
            PushSource,
            RequestSource,
        )
        from feast.on_demand_feature_view import on_demand_feature_view
        from feast.types import Float32, Float64, Int64

        # The driver: the key features are fetched by
        driver = Entity(name="driver", join_keys=["driver_id"])

        driver_stats_source = FileSource(
            name="driver_hourly_stats_source",
            path="data/driver_stats.parquet",
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        )

        driver_stats_fv = FeatureView(
            name="driver_hourly_stats",
            entities=[driver],
            ttl=timedelta(days=1),
            schema=[
                Field(name="conv_rate", dtype=Float32),
                Field(name="acc_rate", dtype=Float32),
                Field(name="avg_daily_trips", dtype=Int64, description="trips a day, on average"),
            ],
            online=True,
            source=driver_stats_source,
            tags={"team": "driver_performance"},
        )

        input_request = RequestSource(
            name="vals_to_add",
            schema=[Field(name="val_to_add", dtype=Int64), Field(name="val_to_add_2", dtype=Int64)],
        )


        @on_demand_feature_view(
            sources=[driver_stats_fv, input_request],
            schema=[Field(name="conv_rate_plus_val1", dtype=Float64)],
        )
        def transformed_conv_rate(inputs: pd.DataFrame) -> pd.DataFrame:
            df = pd.DataFrame()
            df["conv_rate_plus_val1"] = inputs["conv_rate"] + inputs["val_to_add"]
            return df


        driver_activity_v1 = FeatureService(
            name="driver_activity_v1",
            features=[driver_stats_fv[["conv_rate"]], transformed_conv_rate],
        )

        driver_stats_push_source = PushSource(
            name="driver_stats_push_source",
            batch_source=driver_stats_source,
        )

        driver_stats_fresh_fv = FeatureView(
            name="driver_hourly_stats_fresh",
            entities=[driver],
            ttl=timedelta(days=1),
            schema=[
                Field(name="conv_rate", dtype=Float32),
                Field(name="acc_rate", dtype=Float32),
                Field(name="avg_daily_trips", dtype=Int64),
            ],
            online=True,
            source=driver_stats_push_source,
            tags={"team": "driver_performance"},
        )
        """,
}

# Several entities in one view, definitions across files that import each other, `import feast` and aliases,
# older argument names (event_timestamp_column, entities by name), a field mapping and a key column in the schema.
MULTI = {
    "entities.py": """
        import feast
        from feast import ValueType

        driver = feast.Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64,
                              description="A driver")
        customer = feast.Entity(name="customer", join_keys=["customer_id"])
        """,
    "sources/trips.py": """
        from feast.infra.offline_stores.file_source import FileSource

        trips_source = FileSource(
            path="s3://bucket/exports/trips.parquet",
            event_timestamp_column="ended_at",
            field_mapping={"fare_usd": "fare"},
        )
        """,
    "features.py": '''
        """Trip features per driver and customer."""
        import datetime
        from datetime import timedelta

        from feast import FeatureView as FV, Field, FileSource
        from feast import types

        from entities import customer, driver
        from sources.trips import trips_source

        TRIP_FIELDS = [
            Field(name="fare", dtype=types.Float64, description="the fare of the last trip"),
            Field(name="rating", dtype=types.Int32, description="the rating the customer gave"),
        ]

        driver_customer_trips = FV(
            name="driver_customer_trips",
            entities=[driver, customer],
            ttl=datetime.timedelta(hours=36),
            schema=TRIP_FIELDS,
            source=trips_source,
            owner="ops@example.com",
            description="The last trip of each driver with each customer",
            tags={"tier": "gold"},
        )

        customer_profile = FV(
            name="customer_profile",
            entities=["customer"],
            ttl=timedelta(seconds=0),
            schema=[
                Field(name="customer_id", dtype=types.Int64),
                Field(name="segment", dtype=types.String, description="the marketing segment"),
                Field(name="active", dtype=types.Bool, description="has an open account"),
                Field(name="signed_up", dtype=types.UnixTimestamp, description="when the account was opened"),
            ],
            source=FileSource(path="data/customer_profile.parquet", timestamp_field="updated_at"),
            owner="growth@example.com",
        )
        ''',
    ".feastignore": "scratch/\n",
    "scratch/notebook_export.py": "raise SystemExit('never run: the import reads, it does not execute')\n",
}


def by_name(views):
    return {v.name: v for v in views}


def test_the_quickstart_repo_imports_its_views_and_names_what_it_cannot(tmp_path):
    root = repo(tmp_path / "feature_repo", QUICKSTART)
    with pytest.raises(UserError, match=r"example_repo\.py:48: `transformed_conv_rate` is an on-demand feature view "
                                        r"\(Python run at request time\); Lathe has no equivalent .*--skip-unsupported"):
        read_feast_repo(root, owner="risk")
    got = read_feast_repo(root, owner="risk", skip_unsupported=True)
    views = by_name(got.views)
    assert list(views) == ["driver_hourly_stats", "driver_hourly_stats_fresh"]
    stats = views["driver_hourly_stats"]
    assert (stats.owner, stats.entity.name, stats.entity.join_key) == ("risk", "driver", "driver_id")
    assert (stats.source.table, stats.event_time, stats.ttl, stats.tags) == (
        "driver_stats", "event_timestamp", "1d", ["team:driver_performance"])
    assert [(f.name, f.type, f.expr) for f in stats.features] == [
        ("conv_rate", "float32", None), ("acc_rate", "float32", None), ("avg_daily_trips", "int64", None)]
    assert stats.features[2].description == "trips a day, on average"
    assert "no description in Feast" in stats.features[0].description
    # A push source's views read its batch source.
    assert views["driver_hourly_stats_fresh"].source.table == "driver_stats"
    assert [s.split(": ", 1)[0] for s in got.skipped] == ["example_repo.py:48", "example_repo.py:58"]
    assert "FeatureService" in got.skipped[1]
    assert got.files == {"driver_stats": "data/driver_stats.parquet"}


def test_several_entities_files_importing_each_other_and_older_argument_names(tmp_path):
    got = read_feast_repo(repo(tmp_path / "repo", MULTI), owner="nobody-used")
    views = by_name(got.views)
    assert list(views) == ["driver_customer_trips", "customer_profile"]
    trips = views["driver_customer_trips"]
    assert (trips.entity.name, trips.entity.join_key) == ("driver_customer", ["driver_id", "customer_id"])
    assert (trips.source.table, trips.event_time, trips.ttl, trips.owner, trips.tags) == (
        "trips", "ended_at", "36h", "ops@example.com", ["tier:gold"])
    assert trips.description == "The last trip of each driver with each customer"
    assert [(f.name, f.type, f.expr) for f in trips.features] == [("fare", "float64", "fare_usd"),
                                                                   ("rating", "int32", None)]
    profile = views["customer_profile"]
    assert (profile.entity.join_key, profile.ttl, profile.source.table) == ("customer_id", None, "customer_profile")
    assert [(f.name, f.type) for f in profile.features] == [("segment", "string"), ("active", "bool"),
                                                            ("signed_up", "timestamp")]
    assert got.skipped == []


def test_imported_views_apply_and_join_point_in_time(workspace, tmp_path):
    root = repo(tmp_path / "repo", MULTI)
    with connect_writer(workspace) as con:
        con.execute("CREATE TABLE trips (driver_id INTEGER, customer_id INTEGER, ended_at TIMESTAMP, "
                    "fare_usd DOUBLE, rating INTEGER)")
        con.execute("INSERT INTO trips VALUES (1, 7, ?, 12.5, 5), (1, 7, ?, 99.0, 1), (2, 7, ?, 8.0, 4)",
                    [at(1), at(3), at(1)])
        con.execute("CREATE TABLE customer_profile (customer_id INTEGER, updated_at TIMESTAMP, segment VARCHAR, "
                    "active BOOLEAN, signed_up TIMESTAMP)")
    run = CliRunner()
    got = run.invoke(app, ["--workspace", str(workspace.root), "features", "import", str(root), "--owner", "ops"])
    assert got.exit_code == 0, got.output
    written = workspace.catalog_dir / "features" / "repo.yml"
    assert "wrote 2 feature views to" in got.stdout and str(written) in got.stdout
    assert "s3://bucket/exports/trips.parquet" in got.stdout  # the files to load as tables, named
    assert [v["name"] for v in yaml.safe_load(written.read_text())["feature_views"]] == [
        "driver_customer_trips", "customer_profile"]
    assert {a.version.name for a in apply(workspace)} == {"driver_customer_trips", "customer_profile"}
    labels = pd.DataFrame({"driver_id": [1, 1, 2], "customer_id": [7, 7, 7],
                           "event_timestamp": [at(2), at(4), at(1, seconds=37 * 3600)]})
    got_set = training_set(workspace, labels, ["driver_customer_trips"])
    assert list(got_set["fare"].fillna(-1)) == [12.5, 99.0, -1]  # the last is 37 h after its trip: past the 36 h TTL
    again = run.invoke(app, ["--workspace", str(workspace.root), "features", "import", str(root)])
    assert again.exit_code == 2 and f"{written} exists" in again.stderr


def one_file(tmp_path, body: str) -> Path:
    head = """
        from datetime import timedelta
        import os
        from feast import Entity, FeatureView, Field, FileSource, StreamFeatureView
        from feast.types import Array, Float32, Int64
        from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource
        from feast import BigQuerySource

        driver = Entity(name="driver", join_keys=["driver_id"])
        src = FileSource(path="data/stats.parquet", timestamp_field="ts")
        NAMES = ["a", "b"]
        """
    return repo(tmp_path / "r", {"defs.py": textwrap.dedent(head).lstrip() + textwrap.dedent(body).lstrip()})


FV = 'fv = FeatureView(name="v", entities=[driver], source={src}, ttl={ttl}, schema={schema})\n'
FIELDS = '[Field(name="x", dtype=Float32)]'


@pytest.mark.parametrize("body, says", [
    (FV.format(src='BigQuerySource(table="p.d.t", timestamp_field="ts")', ttl="None", schema=FIELDS),
     r"defs\.py:11: the source is a BigQuerySource; only a FileSource \(or a PushSource over one\) is imported"),
    (FV.format(src="src", ttl='timedelta(days=int(os.environ["DAYS"]))', schema=FIELDS),
     r"defs\.py:11: `int\(os.environ\['DAYS'\]\)` is not a literal value"),
    (FV.format(src="src", ttl="None", schema='[Field(name=n, dtype=Float32) for n in NAMES]'),
     r"defs\.py:11: a list comprehension is not read \(the import runs no code\); write the list out"),
    (FV.format(src="src", ttl="None", schema='[Field(name="x", dtype=Array(Int64))]'),
     r"defs\.py:11: the type `Array\(Int64\)` has no Lathe feature type"),
    ('sfv = StreamFeatureView(name="s", entities=[driver], source=src, schema=[])\n',
     r"defs\.py:11: `sfv` is a StreamFeatureView; Lathe has no equivalent"),
    (FV.format(src="src", ttl="None", schema=FIELDS).replace('name="v", ', "") + 'w = FeatureView("w", source=src)\n',
     r"defs\.py:11: FeatureView needs `name=`"),
    ('fv = FeatureView("w", source=src)\n', r"defs\.py:11: FeatureView is called with positional arguments"),
    (FV.format(src="src", ttl="None", schema=FIELDS).replace("[driver]", "[rider]"),
     r"defs\.py:11: `rider` is not defined in this repository"),
    (FV.format(src='PostgreSQLSource(query="select 1", timestamp_field="ts")', ttl="None", schema=FIELDS),
     r"defs\.py:11: the source is a PostgreSQLSource"),
    ("fv = FeatureView(name='v', entities=[driver], source=src, schema=[\n", r"defs\.py:11: .*does not parse"),
    ("x = 1\n", r"no FeatureView is defined in .*r \(read defs\.py\); is this a Feast feature repository\?"),
])
def test_what_has_no_lathe_equivalent_is_refused_at_its_line(tmp_path, body, says):
    with pytest.raises(UserError, match=says):
        read_feast_repo(one_file(tmp_path, body), owner="o")

"""Hostile YAML: alias bombs, recursive anchors, deep nesting, huge files, duplicate keys, Python tags and a
table file whose `name:` disagrees with it. Each is refused with file and line, and nothing changes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import UserError
from catalog.importers import import_paths
from catalog.store import CatalogStore
from core.yaml_files import MAX_DEPTH, MAX_FILE_BYTES, load_documents
from tests.conftest import FIXTURES, ROOT


def _bomb(levels: int = 10, width: int = 10) -> str:
    """A classic billion-laughs document: each level lists the previous one `width` times."""
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"tables: [{{name: boom, description: *a{levels - 1}}}]")
    return "\n".join(lines) + "\n"


def _snapshot(ws) -> dict[str, bytes]:
    """Every catalog file and the warehouse's table list: what a refused import must leave as it was."""
    files = {str(p.relative_to(ws.catalog_dir)): p.read_bytes()
             for p in sorted(ws.catalog_dir.rglob("*")) if p.is_file()}
    import duckdb
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    try:
        tables = con.execute("SELECT string_agg(table_name, ',' ORDER BY table_name) "
                             "FROM duckdb_tables()").fetchone()[0]
    finally:
        con.close()
    return {**files, "<warehouse tables>": str(tables).encode()}


@pytest.fixture
def seeded(workspace):
    import_paths(workspace, [FIXTURES / "import" / "shop" / "orders.csv"])
    return workspace


HOSTILE = {
    # name: (document, expected message fragment, expected line or None)
    "billion laughs": (_bomb(), "more than 500,000 values once its aliases are expanded", None),
    "alias bomb under a merge key": (
        "base: &b {x: 1}\n" + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i > 1 else '*b'] * 9)}]\n"
                                      for i in range(1, 9)) + "tables: [{name: t, tags: *l8}]\n",
        "aliases are expanded", None),
    "recursive anchor": ("tables: &t [{name: x, tags: *t}]\n", "recursive anchor", 1),
    "deep nesting": ("tables:\n" + "".join("  " * (i + 1) + f"- k{i}:\n" for i in range(MAX_DEPTH + 5)),
                     "nested more than", None),
    "flow nesting beyond the parser": ("tables: " + "[" * 5000 + "]" * 5000 + "\n", "malformed YAML", None),
    "duplicate key": ("name: orders\ndescription: one\ndescription: two\ncolumns: []\n",
                      "key `description` appears twice", 3),
    "duplicate key in a list item": ("tables:\n  - name: orders\n    owner: a\n    name: customers\n",
                                     "key `name` appears twice", 4),
    "python object tag": ("tables: !!python/object/apply:os.system ['echo pwned']\n", "malformed YAML", 1),
    "python name tag": ("name: !!python/name:os.system\ncolumns: []\n", "malformed YAML", 1),
    "not utf-8": (None, "not UTF-8 text", None),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_yaml_is_refused_with_file_and_line_and_nothing_changes(seeded, tmp_path, case):
    text, message, line = HOSTILE[case]
    f = tmp_path / "hostile.yml"
    if text is None:
        f.write_bytes(b"tables:\n  - name: caf\xe9\n")
    else:
        f.write_text(text, encoding="utf-8")
    before = _snapshot(seeded)
    with pytest.raises(UserError) as e:
        import_paths(seeded, [f])
    where = f"{f}:{line}: " if line else f"{f}"
    assert str(e.value).startswith(where), str(e.value)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert _snapshot(seeded) == before


def test_a_file_over_the_size_cap_is_refused_before_it_is_parsed(seeded, tmp_path):
    f = tmp_path / "huge.yml"
    with open(f, "w", encoding="utf-8") as out:  # one enormous scalar: valid YAML, just too big
        out.write("name: orders\ndescription: ")
        out.truncate(MAX_FILE_BYTES + 1)
    before = _snapshot(seeded)
    with pytest.raises(UserError, match=r"bytes, more than the 16 MiB a metadata file may have"):
        import_paths(seeded, [f])
    assert _snapshot(seeded) == before


def test_a_huge_scalar_under_the_cap_still_loads(tmp_path):
    f = tmp_path / "long.yml"
    f.write_text("name: orders\ndescription: " + "x" * 2_000_000 + "\n", encoding="utf-8")
    [(data, lines)] = load_documents(f)
    assert len(data["description"]) == 2_000_000 and lines[("description",)] == 2


def test_anchors_and_merge_keys_used_sensibly_still_load(tmp_path):
    f = tmp_path / "schema.yml"
    f.write_text("defaults: &d {owner: sales, tags: [core]}\n"
                 "tables:\n  - <<: *d\n    name: orders\n  - <<: *d\n    name: customers\n    owner: crm\n",
                 encoding="utf-8")
    [(data, lines)] = load_documents(f)
    assert [t["owner"] for t in data["tables"]] == ["sales", "crm"]
    assert lines[("tables", 1, "name")] == 6


def test_a_bomb_inside_the_workspace_catalog_is_refused_when_read(seeded):
    f = seeded.catalog_dir / "tables" / "orders.yml"
    f.write_text(_bomb().replace("tables: [{name: boom, description: *a9}]", "name: orders\ndescription: *a9"),
                 encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{f}:\d+: more than 500,000 values"):
        CatalogStore(seeded).load()


def test_a_table_file_whose_name_disagrees_with_it_is_an_error_with_its_line(seeded):
    tables = seeded.catalog_dir / "tables"
    (tables / "customers.yml").write_text("description: shadows orders\nname: orders\ncolumns: []\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{tables / 'customers.yml'}:2: name `orders` does not match the file "
                                        r"name; rename the file to orders.yml or set `name: customers`"):
        CatalogStore(seeded).load()


def test_the_cli_refuses_a_700_byte_bomb_promptly(seeded, tmp_path):
    f = tmp_path / "bomb.yml"
    f.write_text(_bomb(levels=9, width=9), encoding="utf-8")
    assert len(f.read_bytes()) < 700
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The timeout only stops a hang from stalling the suite; the assertion is on the answer.
    out = subprocess.run([sys.executable, "-m", "cli.main", "--workspace", str(seeded.root), "catalog", "import",
                          str(f)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0
    assert "aliases are expanded" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def _random_document(rng) -> str:
    """A random YAML document of anchors, aliases (also under merge keys), nesting and repeated keys."""
    lines, anchors = [], []
    for i in range(rng.randint(1, 16)):
        kind = rng.choice(["scalar", "list", "list", "list", "map", "merge", "deep", "dup"])
        if kind == "scalar" or not anchors and kind in ("list", "map", "merge"):
            lines.append(f"k{i}: &x{i} v{i}")
        elif kind == "list":
            recent = anchors[-3:]  # chains of recent anchors grow the expansion level by level
            items = ", ".join(f"*{rng.choice(recent)}" for _ in range(rng.randint(1, 30)))
            lines.append(f"k{i}: &x{i} [{items}]")
        elif kind == "map":
            pairs = ", ".join(f"m{j}: *{rng.choice(anchors)}" for j in range(rng.randint(1, 12)))
            lines.append(f"k{i}: &x{i} {{{pairs}}}")
        elif kind == "merge":
            lines.append(f"k{i}: &x{i} {{<<: {{a: 1}}, z: *{rng.choice(anchors)}}}")
        elif kind == "deep":
            depth = rng.randint(1, MAX_DEPTH + 20)
            lines.append(f"k{i}: &x{i} " + "[" * depth + "1" + "]" * depth)
        else:
            lines.append(f"k{rng.randint(0, i)}: again")  # a repeat unless it lands on this very index
            continue
        anchors.append(f"x{i}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(40))
def test_random_compositions_load_or_are_refused_with_file_and_line(tmp_path, seed):
    import random

    f = tmp_path / f"random-{seed}.yml"
    f.write_text(_random_document(random.Random(seed)), encoding="utf-8")
    try:
        docs = load_documents(f)
    except UserError as e:
        assert str(e).startswith(str(f)) and "\n" not in str(e)
        assert any(w in str(e) for w in ("aliases are expanded", "nested more than", "appears twice", "malformed YAML"))
    else:
        assert len(docs) == 1 and isinstance(docs[0][0], dict)

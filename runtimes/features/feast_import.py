"""Feast feature repositories read into Lathe feature views: Entity, FeatureView (and BatchFeatureView without a
transformation), Field, FileSource and PushSource over one, with ttl, tags, owner and descriptions.

The definitions are read from the source text with `ast`, never imported: a repository's modules may run any
code at import and need Feast and its connectors installed. Feast's documented style is constructor calls with
literal arguments, which the syntax tree holds whole. Anything else (an on-demand view, a non-file source, a
value computed at run time) is refused at its file and line, or with `skip_unsupported` listed and left out.
"""
from __future__ import annotations

import ast
import datetime as dt
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from catalog.importers.discovery import table_name_for
from core.errors import UserError
from core.workspace import Workspace
from core.yaml_files import dump_yaml, write_atomic
from runtimes.features.definitions import FeatureView, features_dir, load_definitions

# Feast's types (feast.types, and the older ValueType names) → Lathe feature types.
_TYPES = {"Int32": "int32", "Int64": "int64", "Float32": "float32", "Float64": "float64", "String": "string",
          "Bool": "bool", "UnixTimestamp": "timestamp", "INT32": "int32", "INT64": "int64", "FLOAT": "float32",
          "DOUBLE": "float64", "STRING": "string", "BOOL": "bool", "UNIX_TIMESTAMP": "timestamp"}
_VIEWS = {"FeatureView", "BatchFeatureView"}
_STREAM = ("a StreamFeatureView; Lathe has no equivalent (its views materialize from warehouse tables): land the "
           "stream in a table and define the view over it")
_ON_DEMAND = ("an on-demand feature view (Python run at request time); Lathe has no equivalent (views are read "
              "from tables): compute it as an expression of a view's features (`expr:`) or in the model")
_NO_EQUIVALENT = {
    "StreamFeatureView": _STREAM, "stream_feature_view": _STREAM,
    "OnDemandFeatureView": _ON_DEMAND, "on_demand_feature_view": _ON_DEMAND,
    "batch_feature_view": "a batch feature view with a Python transformation; Lathe has no equivalent (it runs no "
                          "Python over sources): write the transformation as the view's `source: {sql: …}`",
    "FeatureService": "a FeatureService (a named set of features for a model); Lathe has no equivalent: a model "
                      "names its features by reference (view:feature)",
}
_UNITS = [("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]


@dataclass
class FeastRepo:
    views: list[FeatureView]
    skipped: list[str] = field(default_factory=list)  # `file:line: why`, relative to the repository
    files: dict[str, str] = field(default_factory=dict)  # table the views read → the file Feast read it from


class _Refused(UserError):
    def __init__(self, mod: "_Module", node: ast.AST, message: str):
        self.where = f"{mod.rel}:{getattr(node, 'lineno', 1)}"
        super().__init__(f"{self.where}: {message}")


@dataclass(frozen=True)
class _Symbol:
    """Something imported from outside the repository: `feast.types.Float32`, `datetime.timedelta`, `os.environ`."""
    qualified: str

    @property
    def kind(self) -> str:
        return self.qualified.rsplit(".", 1)[-1]

    @property
    def feast(self) -> bool:
        return self.qualified.split(".", 1)[0] == "feast"


@dataclass
class _Module:
    rel: str
    dotted: str
    tree: ast.Module
    names: dict[str, ast.expr] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name → (module, attribute)


@dataclass
class _Call:
    """A Feast constructor call, its keyword arguments left unread until asked for."""
    kind: str
    mod: _Module
    node: ast.Call
    kwargs: dict[str, ast.expr]


class _Reader:
    def __init__(self, root: Path):
        self.root = root
        self.modules: dict[str, _Module] = {}
        for path in _python_files(root):
            rel = path.relative_to(root).as_posix()
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            except SyntaxError as e:
                raise UserError(f"{root / rel}:{e.lineno}: the file does not parse as Python: {e.msg}") from None
            dotted = rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            self.modules[dotted] = _index(_Module(rel, dotted, tree))

    # ---- values ----------------------------------------------------------------------------------------------

    def name(self, mod: _Module, name: str, node: ast.AST, seen: frozenset = frozenset()) -> Any:
        if (mod.dotted, name) in seen:
            raise _Refused(mod, node, f"`{name}` is defined in terms of itself")
        seen = seen | {(mod.dotted, name)}
        if name in mod.names:
            return self.value(mod, mod.names[name], seen)
        if name in mod.imports:
            module, attr = mod.imports[name]
            local = self.modules.get(module)
            if local is None:
                return _Symbol(f"{module}.{attr}" if attr else module)
            if attr is None:
                return local
            if attr in local.names or attr in local.imports:
                return self.name(local, attr, node, seen)
            sub = self.modules.get(f"{module}.{attr}")
            if sub is not None:
                return sub
            raise _Refused(mod, node, f"`{attr}` is not defined in {local.rel}")
        raise _Refused(mod, node, f"`{name}` is not defined in this repository")

    def value(self, mod: _Module, node: ast.expr, seen: frozenset = frozenset()) -> Any:
        """The literal value of `node`: constants, lists, dicts, names of other definitions, timedeltas and Feast
        constructor calls (as `_Call`); anything that would need the code run is refused at its line."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(mod, e, seen) for e in node.elts]
        if isinstance(node, ast.Dict) and None not in node.keys:
            return {self.value(mod, k, seen): self.value(mod, v, seen) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Name):
            return self.name(mod, node.id, node, seen)
        if isinstance(node, ast.Attribute):
            base = self.value(mod, node.value, seen) if isinstance(node.value, (ast.Name, ast.Attribute)) else None
            if isinstance(base, _Symbol):
                return _Symbol(f"{base.qualified}.{node.attr}")
            if isinstance(base, _Module):
                return self.name(base, node.attr, node, seen)
        if isinstance(node, ast.Call):
            try:  # a call of anything but Feast's constructors or timedelta would need the code run
                func = self.value(mod, node.func, seen) if isinstance(node.func, (ast.Name, ast.Attribute)) else None
            except _Refused:
                func = None
            if isinstance(func, _Symbol) and func.qualified in ("datetime.timedelta", "datetime.datetime.timedelta"):
                return self.timedelta(mod, node, seen)
            if isinstance(func, _Symbol) and func.feast:
                if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                    raise _Refused(mod, node, f"{func.kind} is called with * or ** arguments; write each argument out")
                if node.args and func.kind not in ("Array", "Set"):
                    raise _Refused(mod, node, f"{func.kind} is called with positional arguments; name each (name=…, "
                                              "source=…), as Feast's documentation does")
                return _Call(func.kind, mod, node, {k.arg: k.value for k in node.keywords if k.arg})
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            raise _Refused(mod, node, "a list comprehension is not read (the import runs no code); write the list out")
        raise _Refused(mod, node, f"`{ast.unparse(node)}` is not a literal value: the import reads the definitions "
                                  "without running them; write the value itself")

    def timedelta(self, mod: _Module, node: ast.Call, seen: frozenset) -> dt.timedelta:
        args = [self.value(mod, a, seen) for a in node.args]
        kwargs = {k.arg: self.value(mod, k.value, seen) for k in node.keywords if k.arg}
        if not all(isinstance(v, (int, float)) for v in [*args, *kwargs.values()]):
            raise _Refused(mod, node, f"`{ast.unparse(node)}` is not a duration of literal numbers")
        try:
            return dt.timedelta(*args, **kwargs)
        except TypeError as e:
            raise _Refused(mod, node, f"`{ast.unparse(node)}`: {e}") from None

    def arg(self, call: _Call, name: str, default: Any = None, *, old: str | None = None) -> Any:
        node = call.kwargs.get(name) or (call.kwargs.get(old) if old else None)
        return default if node is None else self.value(call.mod, node)

    def text(self, call: _Call, name: str, *, old: str | None = None, required: bool = False) -> str:
        got = self.arg(call, name, "", old=old)
        if got is None:
            got = ""
        if not isinstance(got, str):
            raise _Refused(call.mod, call.kwargs[name], f"{call.kind}'s `{name}=` must be text")
        if required and not got:
            raise _Refused(call.mod, call.node, f"{call.kind} needs `{name}=`")
        return got

    def called(self, mod: _Module, node: ast.expr) -> _Call | None:
        """The Feast call an assignment's or decorator's value is, without reading its arguments."""
        target = node.func if isinstance(node, ast.Call) else node
        if not isinstance(target, (ast.Name, ast.Attribute)):
            return None
        try:
            func = self.value(mod, target)
        except UserError:
            return None
        if not (isinstance(func, _Symbol) and func.feast):
            return None
        return _Call(func.kind, mod, node if isinstance(node, ast.Call) else ast.Call(target, [], []), {})

    # ---- definitions ---------------------------------------------------------------------------------------

    def definitions(self) -> list[tuple[_Module, str, ast.AST, str]]:
        """Every top-level Feast view-like definition, in file order: (module, name, node, kind)."""
        out = []
        for mod in self.modules.values():
            for stmt in mod.tree.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for dec in stmt.decorator_list:
                        c = self.called(mod, dec)
                        if c is not None and c.kind in _NO_EQUIVALENT:
                            out.append((mod, stmt.name, dec, c.kind))
                elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Call):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    c = self.called(mod, stmt.value)
                    if c is not None and (c.kind in _VIEWS or c.kind in _NO_EQUIVALENT):
                        name = targets[0].id if isinstance(targets[0], ast.Name) else ast.unparse(targets[0])
                        out.append((mod, name, stmt.value, c.kind))
        return out

    def entity_named(self, name: str, mod: _Module, node: ast.AST) -> _Call:
        for m in self.modules.values():
            for expr in m.names.values():
                c = self.called(m, expr)
                if c is not None and c.kind == "Entity":
                    call = self.value(m, expr)
                    if self.arg(call, "name") == name:
                        return call
        raise _Refused(mod, node, f"no Entity named `{name}` is defined in this repository")

    def view(self, call: _Call, owner: str, files: dict[str, str]) -> FeatureView:
        mod = call.mod
        if call.kind == "BatchFeatureView" and any(k in call.kwargs for k in ("udf", "feature_transformation",
                                                                               "aggregations")):
            raise _Refused(mod, call.node, _NO_EQUIVALENT["batch_feature_view"])
        name = self.text(call, "name", required=True)
        entities = [self.entity_named(e, mod, call.node) if isinstance(e, str) else e
                    for e in self.arg(call, "entities", [])]
        if not entities or not all(isinstance(e, _Call) and e.kind == "Entity" for e in entities):
            raise _Refused(mod, call.node, f"feature view `{name}` needs `entities=[…]` of Entity definitions: a "
                                           "Lathe view is read by entity key")
        keys = [k for e in entities for k in self.join_keys(e)]
        table, event_time, mapping = self.source(call, name, keys, files)
        schema = self.arg(call, "schema", None, old="features")
        if schema is None:
            raise _Refused(mod, call.node, f"feature view `{name}` leaves its schema for Feast to infer from the data; "
                                           "list the features with schema=[Field(name=…, dtype=…), …]")
        features = []
        for f in schema:
            if not (isinstance(f, _Call) and f.kind in ("Field", "Feature")):
                raise _Refused(mod, call.node, f"feature view `{name}`: schema= must list Field(name=…, dtype=…)")
            fname = self.text(f, "name", required=True)
            if fname.lower() in {k.lower() for k in keys}:
                continue  # Feast lists the key columns in the schema too; here they are the entity's
            features.append({"name": fname, "type": self.dtype(f), "expr": mapping.get(fname),
                             "description": self.text(f, "description") or f"{fname} (no description in Feast)"})
        ttl = self.arg(call, "ttl")
        tags = self.arg(call, "tags") or {}
        if not isinstance(tags, dict):
            raise _Refused(mod, call.kwargs["tags"], "tags= must be a mapping of text to text")
        data = {"name": name, "description": self.text(call, "description"), "owner": self.text(call, "owner") or owner,
                "entity": {"name": "_".join(self.text(e, "name", required=True) for e in entities),
                           "join_key": keys[0] if len(keys) == 1 else keys},
                "source": {"table": table}, "event_time": event_time, "ttl": _ttl(mod, call, ttl),
                "features": [{k: v for k, v in f.items() if v is not None} for f in features],
                "tags": [f"{k}:{v}" for k, v in tags.items()]}
        try:
            return FeatureView.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            raise _Refused(mod, call.node, f"feature view `{name}`: {'.'.join(map(str, err['loc']))}: "
                                           f"{err['msg']}") from None

    def join_keys(self, entity: _Call) -> list[str]:
        keys = self.arg(entity, "join_keys", None, old="join_key")
        keys = [keys] if isinstance(keys, str) else keys
        if not keys:  # older Feast: the entity's name is its key column
            return [self.text(entity, "name", required=True)]
        if not all(isinstance(k, str) and k for k in keys):
            raise _Refused(entity.mod, entity.node, "join_keys= must list column names")
        return keys

    def source(self, call: _Call, name: str, keys: list[str], files: dict[str, str]) -> tuple[str, str, dict]:
        """The table a view reads (named as `lathe catalog import` names the file's table), its time column and
        the feature → column renames of Feast's field_mapping."""
        src = self.arg(call, "source", None, old="batch_source")
        if isinstance(src, _Call) and src.kind == "PushSource":
            src = self.arg(src, "batch_source")  # pushed rows land in the batch source, which the offline path reads
        if not (isinstance(src, _Call) and src.kind == "FileSource"):
            kind = src.kind if isinstance(src, _Call) else type(src).__name__
            raise _Refused(call.mod, call.kwargs.get("source", call.node), f"the source is a {kind}; only a FileSource "
                           "(or a PushSource over one) is imported: load its rows into the warehouse and write the "
                           f"view's `source: {{table: …}}` by hand (feature view `{name}`)")
        path = self.text(src, "path", required=True)
        event_time = self.text(src, "timestamp_field", old="event_timestamp_column")
        if not event_time:
            raise _Refused(src.mod, src.node, "the FileSource names no timestamp_field; a feature view needs the "
                                              "column saying when each row's values became true")
        mapping = self.arg(src, "field_mapping") or {}
        if not isinstance(mapping, dict):
            raise _Refused(src.mod, src.node, "field_mapping= must be a mapping of column to feature name")
        renamed = {k.lower() for k in keys} | {event_time.lower()}
        for column, to in mapping.items():
            if str(to).lower() in renamed:
                raise _Refused(src.mod, src.node, f"field_mapping renames `{column}` to the key or time column "
                               f"`{to}`; Lathe reads those by their names in the table: rename the column there")
        table = table_name_for(Path(path.rsplit("/", 1)[-1]))
        if files.setdefault(table, path) != path:
            raise _Refused(src.mod, src.node, f"two files would load as the table `{table}`: {files[table]} and "
                                              f"{path}; rename one")
        return table, event_time, {str(to): str(col) for col, to in mapping.items()}

    def dtype(self, f: _Call) -> str:
        node = f.kwargs.get("dtype")
        got = self.value(f.mod, node) if node is not None else None
        kind = got.kind if isinstance(got, _Symbol) else None
        if kind not in _TYPES:
            shown = ast.unparse(node) if node is not None else "(none given)"
            raise _Refused(f.mod, node or f.node, f"the type `{shown}` has no Lathe feature type; use one of "
                           "Int32, Int64, Float32, Float64, String, Bool, UnixTimestamp")
        return _TYPES[kind]  # type: ignore[index]


def _index(mod: _Module) -> _Module:
    package = mod.dotted.rsplit(".", 1)[0] if "." in mod.dotted else ""
    for stmt in mod.tree.body:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.asname:
                    mod.imports[a.asname] = (a.name, None)
                else:  # `import feast.types` binds `feast`
                    top = a.name.split(".", 1)[0]
                    mod.imports[top] = (top, None)
        elif isinstance(stmt, ast.ImportFrom):
            base = stmt.module or ""
            if stmt.level:
                parent = package.split(".") if package else []
                parent = parent[:len(parent) - (stmt.level - 1)] if stmt.level > 1 else parent
                base = ".".join([*parent, base] if base else parent)
            for a in stmt.names:
                mod.imports[a.asname or a.name] = (base, a.name)
        elif isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    mod.names[t.id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            mod.names[stmt.target.id] = stmt.value
    return mod


def _python_files(root: Path) -> list[Path]:
    """The `.py` files Feast would read: all under `root` but hidden folders, virtual environments and what
    `.feastignore` names."""
    ignore = root / ".feastignore"
    patterns = [p.strip().rstrip("/") for p in ignore.read_text(encoding="utf-8").splitlines()
                if p.strip() and not p.startswith("#")] if ignore.exists() else []
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        parts = rel.parts[:-1]
        if any(p.startswith(".") or p == "__pycache__" for p in parts):
            continue
        if any((root.joinpath(*parts[:i + 1]) / "pyvenv.cfg").exists() for i in range(len(parts))):
            continue
        if any(fnmatch.fnmatch(rel.as_posix(), p) or rel.as_posix().startswith(p + "/") for p in patterns):
            continue
        out.append(path)
    return out


def _ttl(mod: _Module, call: _Call, ttl: Any) -> str | None:
    if ttl is None:
        return None
    if not isinstance(ttl, dt.timedelta):
        raise _Refused(mod, call.kwargs["ttl"], "ttl= must be a timedelta(…) or None")
    seconds = ttl.total_seconds()
    if seconds == 0:  # Feast's ttl of zero: values never expire
        return None
    if seconds < 0 or seconds != int(seconds):
        raise _Refused(mod, call.kwargs["ttl"], f"ttl {ttl} is not a whole, positive number of seconds")
    unit, size = next((u, s) for u, s in _UNITS if int(seconds) % s == 0)
    return f"{int(seconds) // size}{unit}"


def read_feast_repo(root: Path, *, owner: str, skip_unsupported: bool = False) -> FeastRepo:
    """The feature views of the Feast repository at `root`; a view without an owner gets `owner`. What Lathe
    cannot express is a `UserError` at its file and line, or with `skip_unsupported` an entry of `skipped`."""
    if not root.is_dir():
        raise UserError(f"{root} is not a folder: give the Feast feature repository's folder (it holds "
                        "feature_store.yaml and the definitions' .py files)")
    reader = _Reader(root)
    out = FeastRepo(views=[])
    found = reader.definitions()
    for mod, name, node, kind in found:
        try:
            if kind not in _VIEWS:
                raise _Refused(mod, node, f"`{name}` is {_NO_EQUIVALENT[kind]}")
            call = reader.value(mod, node)  # type: ignore[arg-type]
            files = dict(out.files)
            view = reader.view(call, owner, files)
            if any(v.name.lower() == view.name.lower() for v in out.views):
                raise _Refused(mod, node, f"a second feature view is named `{view.name}`")
        except _Refused as e:
            if not skip_unsupported:
                raise UserError(f"{root / e.where}{str(e)[len(e.where):]}; --skip-unsupported imports the rest") \
                    from None
            out.skipped.append(str(e))
            continue
        out.views.append(view)
        out.files = files
    if not any(kind in _VIEWS for *_, kind in found):
        read = ", ".join(m.rel for m in reader.modules.values()) or "no .py file"
        raise UserError(f"no FeatureView is defined in {root} (read {read}); is this a Feast feature repository?")
    return out


def import_feast_repo(ws: Workspace, root: Path, *, owner: str, skip_unsupported: bool = False,
                      out: Path | None = None) -> tuple[Path, FeastRepo]:
    """Write the repository's views as one YAML file under `catalog/features/` (named for the repository);
    refuses to replace a file or to define a view name the catalog already has."""
    target = out or features_dir(ws) / f"{root.resolve().name}.yml"
    if target.exists():
        raise UserError(f"{target} exists; remove it first, or write elsewhere with --out")
    repo = read_feast_repo(root, owner=owner, skip_unsupported=skip_unsupported)
    if not repo.views:
        raise UserError(f"no feature view of {root} could be imported: " + "; ".join(repo.skipped))
    existing = load_definitions(ws)
    for v in repo.views:
        hit = next((w for n, (_, w) in existing.items() if n.lower() == v.name.lower()), None)
        if hit is not None:
            raise UserError(f"feature view `{v.name}` is already defined at {hit}; rename one")
    body = {"feature_views": [v.model_dump(mode="json", exclude_defaults=True) for v in repo.views]}
    write_atomic(target, f"# Imported from the Feast feature repository {root.resolve()}\n" + dump_yaml(body))
    return target, repo

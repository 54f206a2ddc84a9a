"""The catalog side of one import: table entries built from loaded data and metadata files, then staged.

Reads the current entries it needs and collects new ones in memory; it writes only through the
`CatalogTransaction` it is given, and never touches the warehouse.
"""
from __future__ import annotations

from pathlib import Path

from catalog.importers.data_files import LoadedTable
from catalog.importers.lathe_yaml import read_named_list
from catalog.importers.report import ImportReport, TableImport
from catalog.importers.table_metadata import fit_to_warehouse, merge_metadata
from core.errors import UserError
from catalog.metadata import GlossaryTerm, Owner, Table
from core.principal import Principal
from catalog.store import CatalogStore, CatalogTransaction

# Warehouse tables: lower-case name -> (name as stored, [(column, type), ...]); views count as tables.
WarehouseColumns = dict[str, tuple[str, list[tuple[str, str]]]]
_EACH = 10  # up to this many tables documented ahead of their data get a warning each


class CatalogChanges:
    """Table entries, glossary terms and owners that one import changes, collected before staging."""

    def __init__(self, store: CatalogStore, warehouse: WarehouseColumns, report: ImportReport):
        self.store, self.warehouse, self.report = store, warehouse, report
        self.tables: dict[str, Table] = {}  # every entry this import changes, by lower-case name
        self.stored: dict[str, Table] = {}  # those entries as the catalog had them, by lower-case name
        self.glossary: list[GlossaryTerm] = []
        self.owners: list[Owner] = []
        self.ahead_of_data: list[tuple[str, str]] = []  # (file:line, table) documented before its data

    def warn_ahead_of_data(self) -> None:
        """One warning per table documented before its data, or one in all when a whole catalog came in."""
        few = self.ahead_of_data if len(self.ahead_of_data) <= _EACH else []
        for where, name in few:
            self.report.warnings.append(f"{where}: table `{name}` is not in the warehouse; its metadata was kept "
                                        "for when the data arrive")
        if self.ahead_of_data and not few:
            shown = ", ".join(f"`{n}`" for _, n in self.ahead_of_data[:_EACH])
            self.report.warnings.append(
                f"{len(self.ahead_of_data)} tables are not in the warehouse ({shown}, …; the first at "
                f"{self.ahead_of_data[0][0]}); their metadata was kept for when the data arrive")

    def _entry(self, name: str) -> Table | None:
        key = name.lower()
        if key not in self.tables:
            got = self.store.load_table(name)
            if got is None:
                return None
            self.tables[key] = self.stored[key] = got
        return self.tables[key]

    def loaded(self, t: LoadedTable) -> None:
        """A table whose data were (re)loaded: the warehouse's columns, the entry's analyst metadata."""
        name, cols = self.warehouse[t.name.lower()]
        fitted, lost = fit_to_warehouse(self._entry(name) or Table(name=name), cols, data_replaced=True)
        self.tables[name.lower()] = fitted.model_copy(update={"source": t.source, "row_count": t.rows})
        if lost:
            self.report.warnings.append(f"table `{name}`: columns no longer in the data, their metadata was "
                                        "removed: " + ", ".join(lost))
        self.report.tables.append(TableImport(name=name, source=t.source, rows=t.rows, columns=len(cols),
                                              action="replaced" if t.replaced else "created"))

    def metadata(self, update: Table, path: Path, line: int | None, *, needs_table: bool) -> str | None:
        """Apply one table's metadata; returns the table's name, or None when it was not applied.

        `needs_table`: metadata for a table the warehouse lacks is skipped (dbt) instead of kept for later (Lathe).
        """
        where = f"{path}:{line}" if line else str(path)
        in_wh = self.warehouse.get(update.name.lower())
        if in_wh is None and needs_table:
            self.report.warnings.append(f"{where}: dbt model `{update.name}` has no table in the warehouse; "
                                        "its descriptions were not applied (import its data first)")
            return None
        name = in_wh[0] if in_wh else update.name
        merged = merge_metadata(self._entry(name), update.model_copy(update={"name": name}))
        if in_wh is None:
            self.ahead_of_data.append((where, name))
        else:
            have = {c.lower() for c, _ in in_wh[1]}
            missing = [c.name for c in update.columns if c.name.lower() not in have]
            if missing:
                self.report.warnings.append(f"{where}: table `{name}` has no column "
                                            + ", ".join(f"`{m}`" for m in missing)
                                            + " in the warehouse; that metadata was not kept")
            merged, _ = fit_to_warehouse(merged, in_wh[1], data_replaced=False)
        self.tables[name.lower()] = merged
        return name

    def check_pii(self, principal: Principal) -> None:
        """Only an admin may remove or change a column's PII tag: it decides who sees the values."""
        if principal.is_admin:
            return
        for key, old in self.stored.items():
            new = {c.name.lower(): c.pii for c in self.tables[key].columns}
            for c in old.columns:
                if c.pii is not None and c.name.lower() in new and new[c.name.lower()] != c.pii:
                    now = new[c.name.lower()]
                    raise UserError(f"table `{old.name}` column `{c.name}`: this import would "
                                    f"{'remove' if now is None else 'change'} its PII tag `{c.pii.value}`"
                                    f"{'' if now is None else f' to `{now.value}`'}, which only an admin may do "
                                    f"(`{principal.name}` is not one); keep the tag or ask an admin to import it")

    def stage(self, txn: CatalogTransaction) -> None:
        """Put every changed entry into the transaction; glossary and owners merge by name with the stored ones."""
        for t in self.tables.values():
            txn.put_table(t)
        d = self.store.dir
        if self.glossary:
            old = read_named_list(d / "glossary.yml", "glossary", GlossaryTerm)
            txn.put_glossary(list(({g.name: g for g in old} | {g.name: g for g in self.glossary}).values()))
        if self.owners:
            old = read_named_list(d / "owners.yml", "owners", Owner)
            txn.put_owners(list(({o.name: o for o in old} | {o.name: o for o in self.owners}).values()))

"""The catalog as `pgguard check` imagines it while it reads the files in order.

Only what the files create is known. Everything else is assumed to exist and hold rows (a
table named by a statement but not created by the files is "unknown": protected, non-empty,
with whatever columns the statements name). Transactions are followed the way the server runs
them: one per statement outside BEGIN … COMMIT, a ROLLBACK (or ROLLBACK TO SAVEPOINT) undoes
what the block did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]

#: schemas the guard never looks at (pgguard's own are judged as "uninstall")
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})


@dataclass
class Column:
    """A column of a table check knows; ``type`` is the type's resolved key when known."""

    name: str
    type: Key | None = None
    local: bool = True
    inherited: int = 0
    renamed: bool = False


@dataclass
class Table:
    """A table (relkind r or p). ``created_tx`` is None for tables that existed before."""

    id: int
    schema: str
    name: str
    known: bool
    created_tx: int | None = None
    temp: bool = False
    on_commit_drop: bool = False
    partitioned: bool = False
    maybe_rows: bool = True
    any_columns: bool = True
    columns: dict[str, Column] = field(default_factory=dict)
    parents: list[int] = field(default_factory=list)
    #: table ids this table has a FOREIGN KEY to (TRUNCATE … CASCADE follows these back)
    references: set[int] = field(default_factory=set)
    renamed: bool = False
    has_triggers: bool = False
    #: carries pgguard_truncate_guard (attached where the table was made or moved, unless in a
    #: system or excluded schema; kept when moved into a system schema)
    has_guard: bool = True
    unlogged: bool = False
    #: a typed table (CREATE TABLE … OF type) goes with its type
    of_type: Key | None = None

    def clone(self) -> Table:
        """A copy sharing nothing mutable with this one."""
        return dataclasses.replace(
            self,
            columns={k: dataclasses.replace(c) for k, c in self.columns.items()},
            parents=list(self.parents),
            references=set(self.references),
        )


@dataclass
class TypeInfo:
    """A type the files created: enum, composite, range, domain. ``depends``: its base types."""

    key: Key
    depends: set[Key] = field(default_factory=set)


@dataclass
class Catalog:
    """Everything the files made, plus unknown tables materialised as they are named."""

    tables: dict[int, Table] = field(default_factory=dict)
    by_name: dict[Key, int] = field(default_factory=dict)
    temp_by_name: dict[str, int] = field(default_factory=dict)
    #: other relations the files made (views, sequences, foreign tables …): never guarded
    others: set[Key] = field(default_factory=set)
    schemas_created: set[str] = field(default_factory=set)
    schemas_renamed: set[str] = field(default_factory=set)
    types: dict[Key, TypeInfo] = field(default_factory=dict)
    search_path: tuple[str, ...] = ("public",)
    next_id: int = 1

    def clone(self) -> Catalog:
        """A deep copy, kept at BEGIN/SAVEPOINT for ROLLBACK (by hand: ``copy.deepcopy`` of a
        catalog of a few hundred tables takes most of a second)."""
        return Catalog(
            tables={k: t.clone() for k, t in self.tables.items()},
            by_name=dict(self.by_name),
            temp_by_name=dict(self.temp_by_name),
            others=set(self.others),
            schemas_created=set(self.schemas_created),
            schemas_renamed=set(self.schemas_renamed),
            types={k: TypeInfo(v.key, set(v.depends)) for k, v in self.types.items()},
            search_path=self.search_path,
            next_id=self.next_id,
        )

    def key_of(self, t: Table) -> Key:
        """The table's name as the catalog would list it."""
        return ("pg_temp", t.name) if t.temp else (t.schema, t.name)

    def children(self, tid: int) -> list[int]:
        """Direct partitions / inheritance children of a table."""
        return [t.id for t in self.tables.values() if tid in t.parents]

    def descendants(self, tid: int) -> list[int]:
        """Every table below ``tid`` (partitions of partitions, grandchildren …)."""
        out: list[int] = []
        todo = self.children(tid)
        while todo:
            c = todo.pop()
            if c not in out and c != tid:
                out.append(c)
                todo.extend(self.children(c))
        return out

    def lookup(self, schema: str | None, name: str) -> int | None:
        """The table a name resolves to, if check knows it (temp tables first, as the server)."""
        if schema == "pg_temp" or (schema is None and name in self.temp_by_name):
            return self.temp_by_name.get(name)
        if schema is not None:
            return self.by_name.get((schema, name))
        # pg_catalog is searched first unless the path names it
        path = self.search_path if "pg_catalog" in self.search_path else ("pg_catalog",)
        for s in (*path, *self.search_path):
            if (s, name) in self.by_name:
                return self.by_name[(s, name)]
        return None

    def creation_schema(self, schema: str | None) -> str:
        """Where an unqualified new object goes: the first schema on the search path."""
        if schema is not None:
            return schema
        return self.search_path[0] if self.search_path else "public"

    def add(self, t: Table) -> Table:
        """Register a table under its name."""
        self.tables[t.id] = t
        if t.temp:
            self.temp_by_name[t.name] = t.id
        else:
            self.by_name[(t.schema, t.name)] = t.id
        return t

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def resolve(self, schema: str | None, name: str) -> Table:
        """The table a statement names; an unknown one is assumed to exist and hold rows."""
        tid = self.lookup(schema, name)
        if tid is not None:
            return self.tables[tid]
        if schema == "pg_temp":
            return self.add(Table(self.new_id(), "pg_temp", name, known=False, temp=True))
        s = self.creation_schema(schema)
        return self.add(
            Table(
                self.new_id(),
                s,
                name,
                known=False,
                renamed=s in self.schemas_renamed,
                has_guard=s not in SYSTEM_SCHEMAS,
            )
        )

    def resolve_rv(self, rv: Any) -> Table:
        """:meth:`resolve` for a parse tree's RangeVar."""
        return self.resolve(rv.schemaname, str(rv.relname))

    def remove(self, tid: int) -> None:
        """Forget a dropped table (and its links)."""
        t = self.tables.pop(tid, None)
        if t is None:
            return
        if t.temp:
            self.temp_by_name.pop(t.name, None)
        else:
            self.by_name.pop((t.schema, t.name), None)
        for other in self.tables.values():
            if tid in other.parents:
                other.parents.remove(tid)
            other.references.discard(tid)

    def rename(self, t: Table, schema: str, name: str) -> None:
        """Move a table to a new name; the server then treats its name as new."""
        if t.temp:
            self.temp_by_name.pop(t.name, None)
            t.name = name
            self.temp_by_name[name] = t.id
            return
        self.by_name.pop((t.schema, t.name), None)
        t.schema, t.name = schema, name
        t.renamed = True
        self.by_name[(schema, name)] = t.id

    def tables_in_schema(self, schema: str) -> list[Table]:
        return [t for t in self.tables.values() if not t.temp and t.schema == schema]

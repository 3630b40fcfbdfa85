"""Judge statements one by one against the imagined catalog, as the server's guard would.

What is refused mirrors sql/050_guard_drop.sql, sql/060_guard_ddl_end.sql and
sql/070_truncate_guard.sql: dropping a table or partition (directly, with its parent, or by
``CASCADE``), dropping a column (directly, in the children it reaches, or by dropping its type),
``TRUNCATE`` (the tables named, their children, and what ``CASCADE`` reaches), ``SET UNLOGGED``,
and switching off a table's TRUNCATE guard. Never refused: temporary tables, tables created
earlier in the same transaction, excluded schemas, and (unless ``protect_empty``) tables that
hold no row, which offline means made by the files with nothing written to them since.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import (
    AlterTableType,
    ConstrType,
    DropBehavior,
    ObjectType,
    OnCommitAction,
    TransactionStmtKind,
)

from .model import CheckOptions, Refusal, Statement, Unparsed
from .names import ident_glob, ident_path
from .state import SYSTEM_SCHEMAS, Catalog, Column, Key, Table, TypeInfo

GUARD_TRIGGER = "pgguard_truncate_guard"
OWN_SCHEMAS = frozenset({"pgguard", "pgguard_sentinel"})
RENAMED_NOTE = (
    "renamed by these files: a token issued before the rename does not cover it; "
    "approve it after the rename has run"
)
#: functions that write no table; a SELECT calling anything else may (a data migration)
_PURE_FUNCTIONS = frozenset(
    """count sum min max avg now nextval setval currval lower upper length concat format
    coalesce substring replace trim to_char to_date to_timestamp current_setting set_config
    gen_random_uuid random md5 pg_get_serial_sequence pg_advisory_lock pg_advisory_xact_lock
    pg_advisory_unlock string_agg array_agg json_build_object jsonb_build_object
    pg_sleep version current_database current_schema generate_series row_number""".split()
)
_TRIGGER_OFF = {
    AlterTableType.AT_DisableTrig,
    AlterTableType.AT_EnableTrig,
    AlterTableType.AT_EnableReplicaTrig,
}
_ALL_TRIGGERS_OFF = {
    AlterTableType.AT_DisableTrigAll,
    AlterTableType.AT_DisableTrigUser,
    AlterTableType.AT_EnableTrigAll,
    AlterTableType.AT_EnableTrigUser,
}


def walk(node: Any) -> Iterator[ast.Node]:
    """Every AST node under ``node`` (itself included)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Node):
            yield n
            for attr in getattr(type(n), "__slots__", ()):
                stack.append(getattr(n, attr, None))
        elif isinstance(n, tuple | list):
            stack.extend(n)


def _names(items: Any) -> list[str]:
    return [str(s.sval) for s in items if isinstance(s, ast.String)]


def _pure(call: Any) -> bool:
    """A function call known to write no table."""
    fname = _names(call.funcname)
    return fname[-1] in _PURE_FUNCTIONS or fname[0] == "pg_catalog"


def _calls_code(node: Any) -> bool:
    """Does a column definition or constraint call a function that might write elsewhere?"""
    return any(isinstance(n, ast.FuncCall) and not _pure(n) for n in walk(node))


def _any(x: Any) -> Any:
    """pglast types every node field as optional; the parser fills the ones read here."""
    return x


def _qualified(names: list[str]) -> tuple[str | None, str]:
    """(schema or None, name) from a possibly catalog-qualified name list."""
    return (names[-2] if len(names) >= 2 else None), names[-1]


class Analyzer:
    """Feeds statements in execution order; collects refusals and what it could not judge."""

    def __init__(self, options: CheckOptions) -> None:
        self.opts = options
        self.cat = Catalog(search_path=options.search_path)
        self.tx = 0
        self.in_block = False
        self.block_start: Catalog | None = None
        self.savepoints: list[tuple[str, Catalog]] = []
        self.refusals: list[Refusal] = []
        self.unparsed: list[Unparsed] = []
        self.statements = 0
        self._src: Statement | None = None

    # --- transactions ------------------------------------------------------------------------

    def begin(self) -> None:
        """Start a transaction block (BEGIN, or a framework's per-migration transaction)."""
        if self.in_block:
            return
        self.tx += 1
        self.in_block = True
        self.block_start = self.cat.clone()
        self.savepoints = []

    def commit(self, rollback: bool = False) -> None:
        """End the block; a rollback restores the catalog as it was at BEGIN."""
        if not self.in_block:
            return
        if rollback and self.block_start is not None:
            self._restore(self.block_start)
        self._end_of_transaction()
        self.in_block = False
        self.block_start = None
        self.savepoints = []

    def _restore(self, old: Catalog) -> None:
        """Roll the catalog back, except for rows: a rolled-back INSERT leaves its tuples in
        the heap, and the server's empty-table rule looks at the heap."""
        written = {tid for tid, t in self.cat.tables.items() if t.maybe_rows}
        self.cat = old
        for tid in written & old.tables.keys():
            old.tables[tid].maybe_rows = True

    def _end_of_transaction(self) -> None:
        for t in list(self.cat.tables.values()):
            if t.on_commit_drop:
                self.cat.remove(t.id)

    # --- entry point ---------------------------------------------------------------------------

    def feed(self, node: ast.Node, src: Statement) -> None:
        """Judge one parsed statement (a RawStmt's ``stmt``) and apply it to the catalog."""
        self.statements += 1
        self._src = src
        if isinstance(node, ast.TransactionStmt):
            self._transaction(node)
            return
        autocommit = not self.in_block
        if autocommit:
            self.tx += 1
        handler = getattr(self, "_" + type(node).__name__, None)
        self._writes(node)
        if handler is not None:
            handler(node)
        if autocommit:
            self._end_of_transaction()

    def note(self, src: Statement, error: str) -> None:
        """Report a statement check did not judge."""
        self.unparsed.append(Unparsed(src.file, src.line, error))

    def _transaction(self, node: Any) -> None:
        kind = node.kind
        if kind in (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START):
            self.begin()
        elif kind in (
            TransactionStmtKind.TRANS_STMT_COMMIT,
            TransactionStmtKind.TRANS_STMT_PREPARE,
        ):
            self.commit()
            if node.chain:
                self.begin()
        elif kind == TransactionStmtKind.TRANS_STMT_ROLLBACK:
            self.commit(rollback=True)
            if node.chain:
                self.begin()
        elif kind == TransactionStmtKind.TRANS_STMT_SAVEPOINT and self.in_block:
            self.savepoints.append((node.savepoint_name or "", self.cat.clone()))
        elif kind == TransactionStmtKind.TRANS_STMT_ROLLBACK_TO:
            for i in range(len(self.savepoints) - 1, -1, -1):
                if self.savepoints[i][0] == node.savepoint_name:
                    self._restore(self.savepoints[i][1].clone())
                    del self.savepoints[i + 1 :]
                    break
        elif kind == TransactionStmtKind.TRANS_STMT_RELEASE:
            for i in range(len(self.savepoints) - 1, -1, -1):
                if self.savepoints[i][0] == node.savepoint_name:
                    del self.savepoints[i:]
                    break

    # --- the guard's judgement -----------------------------------------------------------------

    def watched(self, t: Table) -> bool:
        """Is losing this table's data refused at all (sql_drop looks at every schema but
        excluded ones and pgguard's own; temporary tables never)?"""
        if t.temp:
            return False
        return t.schema not in self.opts.exclude_schemas and t.schema not in OWN_SCHEMAS

    def guarded(self, t: Table) -> bool:
        """Does the table carry its TRUNCATE guard (what TRUNCATE and SET UNLOGGED need)?"""
        return t.has_guard and self.watched(t)

    def empty(self, t: Table, tree: bool = False) -> bool:
        """Known to hold no row, as the server measures it (sql/047_empty_rule.sql): its own
        heap has no block (a partitioned table has no storage of its own); for a column, the
        table and everything below it. Offline: made by the files, nothing written since."""
        tables = [t] + ([self.cat.tables[d] for d in self.cat.descendants(t.id)] if tree else [])
        return all(x.known and (x.partitioned or not x.maybe_rows) for x in tables)

    def protected(self, t: Table, column: bool = False, truncate: bool = False) -> bool:
        """Would the server refuse to lose this table's (or, ``column``, a column's) data?"""
        ok = self.guarded(t) if truncate else self.watched(t)
        if not ok or t.created_tx == self.tx:
            return False
        if not (column or truncate) and t.schema == "pg_catalog":
            return True  # the server measures no table there as empty before a DROP (047)
        return self.opts.protect_empty or not self.empty(t, tree=column)

    def refuse(self, op: str, t: Table, column: str | None = None, note: str | None = None) -> None:
        """Record that the current statement is refused for ``op`` on the table or column."""
        assert self._src is not None
        parts = (t.schema, t.name) if column is None else (t.schema, t.name, column)
        renamed = t.renamed or (
            column is not None and column in t.columns and t.columns[column].renamed
        )
        self.refusals.append(
            Refusal(
                self._src.file,
                self._src.line,
                op,
                ident_path(*parts),
                ident_glob(parts),
                self._src.sql,
                note or (RENAMED_NOTE if renamed else None),
            )
        )

    def refuse_pattern(self, op: str, obj: str, note: str) -> None:
        """A refusal over objects check cannot list (they exist outside the files)."""
        assert self._src is not None
        self.refusals.append(
            Refusal(self._src.file, self._src.line, op, obj, obj, self._src.sql, note)
        )

    # --- rows ------------------------------------------------------------------------------------

    def _writes(self, node: Any) -> None:
        """Mark tables that may hold rows after this statement (conservatively)."""
        opaque = isinstance(node, ast.DoStmt | ast.CallStmt | ast.ExecuteStmt)
        dml = isinstance(
            node,
            ast.SelectStmt
            | ast.InsertStmt
            | ast.UpdateStmt
            | ast.DeleteStmt
            | ast.MergeStmt
            | ast.CopyStmt
            | ast.ExplainStmt
            | ast.PrepareStmt,
        )
        for n in walk(node) if dml else ():
            target = None
            adds = False
            if isinstance(n, ast.InsertStmt):
                target, adds = n.relation, self.may_yield_rows(n.selectStmt)
            elif isinstance(n, ast.MergeStmt):
                target, adds = n.relation, True
            elif isinstance(n, ast.UpdateStmt | ast.DeleteStmt):
                target = n.relation
            elif isinstance(n, ast.CopyStmt) and n.is_from and n.relation is not None:
                target, adds = n.relation, True
            elif isinstance(n, ast.FuncCall) and not _pure(n):
                opaque = True
            if target is None:
                continue
            t = self.cat.resolve_rv(target)
            # triggers (the files' or unknown ones) may write any table
            if not t.known or t.has_triggers:
                opaque = True
            # the server's rule reads the heap: an INSERT (or COPY) adds to its target's,
            # routed anywhere below a partitioned one (an UPDATE too: rows move between
            # partitions); UPDATE or DELETE of a plain table adds no block to an empty heap
            below = self.cat.descendants(t.id) if t.partitioned else []
            for tid in ([t.id] if adds else []) + below:
                self.cat.tables[tid].maybe_rows = True
        if opaque:
            self.opaque()

    def opaque(self) -> None:
        """Code check cannot see into ran (DO, a function, Python): any table may hold rows."""
        for t in self.cat.tables.values():
            t.maybe_rows = True

    # --- CREATE ----------------------------------------------------------------------------------

    def _type_key(self, tn: Any) -> Key | None:
        if tn is None:
            return None
        names = _names(tn.names)
        schema, name = _qualified(names)
        if schema == "pg_catalog":
            return None
        if schema is not None:
            return (schema, name)
        for s in self.cat.search_path:
            if (s, name) in self.cat.types or (s, name) in self.cat.by_name:
                return (s, name)
        return None

    def _new_table(self, rv: Any, *, rows: bool, any_columns: bool = False) -> Table | None:
        """The table a CREATE makes; None when the server would refuse to make it (the name is
        taken, or a system schema: nothing changes)."""
        temp = rv.relpersistence == "t" or rv.schemaname == "pg_temp"
        schema = "pg_temp" if temp else self.cat.creation_schema(rv.schemaname)
        if self.cat.lookup("pg_temp" if temp else schema, rv.relname) is not None:
            return None
        if schema in SYSTEM_SCHEMAS or (schema, rv.relname) in self.cat.others:
            return None
        t = self.cat.add(
            Table(
                self.cat.new_id(),
                schema,
                rv.relname,
                known=True,
                created_tx=self.tx,
                temp=temp,
                maybe_rows=rows,
                any_columns=any_columns,
                has_guard=not temp
                and schema not in SYSTEM_SCHEMAS
                and schema not in self.opts.exclude_schemas,
            )
        )
        if not temp:
            self.cat.types[(schema, rv.relname)] = TypeInfo((schema, rv.relname))
        return t

    def _CreateStmt(self, node: Any, schema: str | None = None) -> None:
        rv = node.relation
        if schema is not None and rv.schemaname is None:
            rv = ast.RangeVar(
                schemaname=schema, relname=rv.relname, relpersistence=rv.relpersistence
            )
        if node.if_not_exists and self.cat.lookup(rv.schemaname, rv.relname) is None:
            # it may exist already (with rows): the server would then skip the statement
            self.cat.resolve_rv(rv)
            return
        if self.cat.lookup(rv.schemaname, rv.relname) is not None and node.if_not_exists:
            return
        parents = [self.cat.resolve_rv(p) for p in node.inhRelations or ()]
        t = self._new_table(rv, rows=False)
        if t is None:
            return
        t.unlogged = rv.relpersistence == "u"
        t.on_commit_drop = node.oncommit == OnCommitAction.ONCOMMIT_DROP
        t.partitioned = node.partspec is not None
        t.parents = [p.id for p in parents]
        t.any_columns = any(p.any_columns for p in parents)
        for p in parents:
            for c in p.columns.values():
                col = t.columns.setdefault(c.name, Column(c.name, c.type, local=False))
                col.inherited += 1
        if node.ofTypename is not None:
            t.any_columns = True
            schema_, name_ = _qualified(_names(node.ofTypename.names))
            t.of_type = self._type_key(node.ofTypename) or (
                self.cat.creation_schema(schema_),
                name_,
            )
        for elt in node.tableElts or ():
            if _calls_code(elt):
                t.has_triggers = True  # a DEFAULT or CHECK running code on every write
            if isinstance(elt, ast.ColumnDef) and elt.colname:
                existing = t.columns.get(elt.colname)
                if existing is not None:
                    existing.local = True
                else:
                    t.columns[elt.colname] = Column(elt.colname, self._type_key(elt.typeName))
                for c in elt.constraints or ():
                    self._constraint(t, c)
            elif isinstance(elt, ast.TableLikeClause):
                src = self.cat.resolve_rv(elt.relation)
                t.any_columns = t.any_columns or src.any_columns
                for c in src.columns.values():
                    t.columns.setdefault(c.name, Column(c.name, c.type))
            elif isinstance(elt, ast.Constraint):
                self._constraint(t, elt)

    def _constraint(self, t: Table, c: Any) -> None:
        if isinstance(c, ast.Constraint) and c.contype == ConstrType.CONSTR_FOREIGN and c.pktable:
            ref = self.cat.resolve_rv(c.pktable)
            t.references.add(ref.id)

    def _CreateTableAsStmt(self, node: Any) -> None:
        if node.objtype != ObjectType.OBJECT_TABLE:
            rel = node.into.rel
            self.cat.others.add((self.cat.creation_schema(rel.schemaname), rel.relname))
            return
        rel = node.into.rel
        if node.if_not_exists and self.cat.lookup(rel.schemaname, rel.relname) is None:
            self.cat.resolve_rv(rel)
            return
        rows = not node.into.skipData and self.may_yield_rows(node.query)
        t = self._new_table(rel, rows=rows, any_columns=True)
        if t is None:
            return
        t.on_commit_drop = node.into.onCommit == OnCommitAction.ONCOMMIT_DROP

    def _SelectStmt(self, node: Any) -> None:
        if node.intoClause is not None:
            self._new_table(node.intoClause.rel, rows=self.may_yield_rows(node), any_columns=True)

    def may_yield_rows(self, query: Any) -> bool:
        """Could this query return a row? No, only when it reads nothing but tables known to
        be empty (a ``CREATE TABLE AS`` or ``INSERT … SELECT`` from them adds no row)."""
        if not isinstance(query, ast.SelectStmt) or query.withClause is not None:
            return True
        if query.larg is not None or query.rarg is not None:
            return self.may_yield_rows(query.larg) or self.may_yield_rows(query.rarg)
        if query.valuesLists or not query.fromClause:
            return True
        for n in walk(query.fromClause):
            if isinstance(n, ast.RangeFunction | ast.RangeTableFunc):
                return True
            if isinstance(n, ast.RangeVar):
                tid = self.cat.lookup(n.schemaname, str(n.relname))
                if tid is None or not self.empty(self.cat.tables[tid], tree=True):
                    return True
        return False

    def _CreateSchemaStmt(self, node: Any) -> None:
        if node.schemaname:
            self.cat.schemas_created.add(node.schemaname)
        for elt in node.schemaElts or ():
            if isinstance(elt, ast.CreateStmt):
                self._CreateStmt(elt, schema=node.schemaname)
            else:
                handler = getattr(self, "_" + type(elt).__name__, None)
                if handler is not None:
                    handler(elt)

    def _other_relation(self, rv: Any) -> None:
        if rv is not None:
            self.cat.others.add((self.cat.creation_schema(rv.schemaname), rv.relname))

    def _ViewStmt(self, node: Any) -> None:
        self._other_relation(node.view)

    def _CreateSeqStmt(self, node: Any) -> None:
        self._other_relation(node.sequence)

    def _CreateForeignTableStmt(self, node: Any) -> None:
        self._other_relation(node.base.relation)

    def _type_created(self, names: Any, depends: set[Key]) -> None:
        schema, name = _qualified(_names(names))
        key = (self.cat.creation_schema(schema), name)
        self.cat.types[key] = TypeInfo(key, depends)

    def _CreateEnumStmt(self, node: Any) -> None:
        self._type_created(node.typeName, set())

    def _CreateRangeStmt(self, node: Any) -> None:
        self._type_created(node.typeName, set())

    def _CompositeTypeStmt(self, node: Any) -> None:
        deps = {
            k
            for c in node.coldeflist or ()
            if isinstance(c, ast.ColumnDef) and (k := self._type_key(c.typeName)) is not None
        }
        rv = node.typevar
        key = (self.cat.creation_schema(rv.schemaname), rv.relname)
        self.cat.types[key] = TypeInfo(key, deps)

    def _CreateDomainStmt(self, node: Any) -> None:
        base = self._type_key(node.typeName)
        self._type_created(node.domainname, {base} if base else set())

    def _CreateTrigStmt(self, node: Any) -> None:
        self.cat.resolve_rv(node.relation).has_triggers = True

    def _RuleStmt(self, node: Any) -> None:
        self.cat.resolve_rv(node.relation).has_triggers = True

    def _VariableSetStmt(self, node: Any) -> None:
        if (node.name or "").lower() != "search_path":
            return
        values: list[str] = []
        for a in node.args or ():
            if isinstance(a, ast.A_Const) and isinstance(a.val, ast.String):
                values.append(str(a.val.sval))
        values = [v for v in values if v not in ("$user", "pg_catalog", "pg_temp")]
        self.cat.search_path = tuple(values) or self.opts.search_path

    # --- DROP ------------------------------------------------------------------------------------

    def _drop_tables(self, direct: list[Table], cascade: bool) -> None:
        """Drop tables with what goes with them; refuse the protected ones."""
        gone: list[Table] = []
        for t in direct:
            if t not in gone:
                gone.append(t)
        # partitions always go with their parent; inheritance children only by CASCADE
        for t in list(gone):
            for d in self.cat.descendants(t.id):
                child = self.cat.tables[d]
                if child in gone:
                    continue
                if not cascade and not all(
                    self.cat.tables[p].partitioned for p in child.parents if p in self.cat.tables
                ):
                    return  # the server errors out: "other objects depend on it"
                gone.append(child)
        for t in gone:
            if t.schema in OWN_SCHEMAS and not t.temp:
                self.refuse_pattern("uninstall", "pgguard", "pgguard's own objects")
            elif self.protected(t):
                # each table going is judged on its own (a partitioned parent holds no row
                # itself); naming each also covers partitions attached after the token
                self.refuse("drop_table", t)
        if cascade:
            keys = {self.cat.key_of(t) for t in gone}
            self._drop_columns_of_types(keys)
        for t in gone:
            self.cat.types.pop((t.schema, t.name), None)
            self.cat.remove(t.id)

    def _drop_columns_of_types(self, keys: set[Key]) -> None:
        """``DROP TYPE … CASCADE`` (or of a table): columns of those types go too."""
        types = set(keys)
        grew = True
        while grew:
            grew = False
            for info in self.cat.types.values():
                if info.key not in types and info.depends & types:
                    types.add(info.key)
                    grew = True
        typed = [t for t in self.cat.tables.values() if t.of_type in types]
        if typed:
            self._drop_tables(typed, cascade=True)
        for t in list(self.cat.tables.values()):
            for c in list(t.columns.values()):
                if c.type in types:
                    if self.protected(t, column=True):
                        self.refuse("drop_column", t, c.name)
                    del t.columns[c.name]
        for k in types:
            self.cat.types.pop(k, None)

    def _DropStmt(self, node: Any) -> None:
        kind = node.removeType
        cascade = node.behavior == DropBehavior.DROP_CASCADE
        if kind == ObjectType.OBJECT_TABLE:
            direct = []
            for obj in node.objects or ():
                schema, name = _qualified(_names(obj))
                key = (self.cat.creation_schema(schema), name)
                if self.cat.lookup(schema, name) is None and key in self.cat.others:
                    continue
                direct.append(self.cat.resolve(schema, name))
            self._drop_tables(direct, cascade)
        elif kind == ObjectType.OBJECT_SCHEMA:
            for obj in node.objects or ():
                schema = obj.sval if isinstance(obj, ast.String) else _names(obj)[-1]
                self._drop_schema(str(schema), cascade)
        elif kind in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
            for obj in node.objects or ():
                schema, name = _qualified(_names(obj.names))
                key = self._type_key(obj) or (self.cat.creation_schema(schema), name)
                if key in self.cat.types:
                    if cascade:
                        self._drop_columns_of_types({key})
                    elif any(
                        c.type == key for t in self.cat.tables.values() for c in t.columns.values()
                    ) or any(t.of_type == key for t in self.cat.tables.values()):
                        return  # refused by the server's dependency check, not by the guard
                    self.cat.types.pop(key, None)
                elif cascade:
                    self.refuse_pattern(
                        "drop_column",
                        "*.*.*",
                        f"columns of type {ident_path(*key)} outside the files may go with it",
                    )
        elif kind == ObjectType.OBJECT_TRIGGER:
            for obj in node.objects or ():
                names = _names(obj)
                if names[-1] == GUARD_TRIGGER:
                    t = self.cat.resolve(*_qualified(names[:-1]))
                    if self.guarded(t):
                        self.refuse("uninstall", t)
        elif kind == ObjectType.OBJECT_EXTENSION:
            assert self._src is not None
            self.note(
                self._src,
                "not checked: DROP EXTENSION drops the extension's own tables"
                " (and with CASCADE, columns of its types), which check cannot see",
            )
        elif kind in (
            ObjectType.OBJECT_VIEW,
            ObjectType.OBJECT_MATVIEW,
            ObjectType.OBJECT_SEQUENCE,
            ObjectType.OBJECT_FOREIGN_TABLE,
        ):
            for obj in node.objects or ():
                schema, name = _qualified(_names(obj))
                self.cat.others.discard((self.cat.creation_schema(schema), name))

    def _drop_schema(self, schema: str, cascade: bool) -> None:
        if schema in OWN_SCHEMAS:
            self.refuse_pattern("uninstall", "pgguard", "pgguard's own schema")
            return
        tables = self.cat.tables_in_schema(schema)
        if not cascade:
            if not tables:
                self.cat.schemas_created.discard(schema)
            return  # a schema that still holds anything cannot be dropped without CASCADE
        known_types = {k for k in self.cat.types if k[0] == schema}
        self._drop_tables(tables, cascade=True)
        self._drop_columns_of_types(known_types)
        if schema not in self.cat.schemas_created and schema not in self.opts.exclude_schemas:
            self.refuse_pattern(
                "drop_table",
                f"{ident_glob((schema,))}.*",
                "tables in this schema that the files did not create would go with it",
            )
        self.cat.schemas_created.discard(schema)
        self.cat.others = {k for k in self.cat.others if k[0] != schema}

    def _DropOwnedStmt(self, node: Any) -> None:
        self.refuse_pattern("drop_table", "*", "whatever these roles own would be dropped")

    # --- ALTER TABLE -----------------------------------------------------------------------------

    def _AlterTableStmt(self, node: Any) -> None:
        if node.objtype != ObjectType.OBJECT_TABLE:
            return
        rv = node.relation
        key = (self.cat.creation_schema(rv.schemaname), rv.relname)
        if self.cat.lookup(rv.schemaname, rv.relname) is None:
            if key in self.cat.others or node.missing_ok:
                return
        t = self.cat.resolve_rv(rv)
        for cmd in node.cmds or ():
            if not isinstance(cmd, ast.AlterTableCmd):
                continue
            cmd = _any(cmd)
            st = cmd.subtype
            if st == AlterTableType.AT_DropColumn and cmd.name:
                self._drop_column(
                    t, cmd.name, recurse=bool(rv.inh), missing_ok=bool(cmd.missing_ok)
                )
            elif st == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
                self._add_column(t, cmd.def_, recurse=bool(rv.inh))
            elif st == AlterTableType.AT_AlterColumnType and cmd.name in t.columns:
                if isinstance(cmd.def_, ast.ColumnDef):
                    t.columns[cmd.name].type = self._type_key(cmd.def_.typeName)
            elif st == AlterTableType.AT_SetUnLogged:
                # no empty-table exemption here: the table would stay unlogged; an unlogged
                # table is not rewritten again, so nothing fires
                if (
                    self.guarded(t)
                    and t.created_tx != self.tx
                    and not t.partitioned
                    and not t.unlogged
                ):
                    self.refuse("unlogged", t)
                t.unlogged = True
            elif st == AlterTableType.AT_SetLogged:
                t.unlogged = False
            elif st == AlterTableType.AT_AddConstraint:
                self._constraint(t, cmd.def_)
            elif st == AlterTableType.AT_AddInherit and isinstance(cmd.def_, ast.RangeVar):
                parent = self.cat.resolve_rv(cmd.def_)
                t.parents.append(parent.id)
            elif st in (AlterTableType.AT_DropInherit, AlterTableType.AT_DetachPartition):
                other = cmd.def_.name if isinstance(cmd.def_, ast.PartitionCmd) else cmd.def_
                if isinstance(other, ast.RangeVar):
                    o = self.cat.resolve_rv(other)
                    child, parent = (o, t) if st == AlterTableType.AT_DetachPartition else (t, o)
                    if parent.id in child.parents:
                        child.parents.remove(parent.id)
                        for c in child.columns.values():
                            if c.name in parent.columns:
                                c.inherited, c.local = max(0, c.inherited - 1), True
            elif st == AlterTableType.AT_AttachPartition and isinstance(cmd.def_, ast.PartitionCmd):
                part = self.cat.resolve_rv(cmd.def_.name)
                part.parents.append(t.id)
            elif (st in _TRIGGER_OFF and cmd.name == GUARD_TRIGGER) or st in _ALL_TRIGGERS_OFF:
                for tid in [t.id, *self.cat.descendants(t.id)]:
                    if self.guarded(self.cat.tables[tid]):
                        self.refuse("uninstall", self.cat.tables[tid])

    def _add_column(self, t: Table, cd: Any, recurse: bool) -> None:
        if not cd.colname:
            return
        typ = self._type_key(cd.typeName)
        t.columns.setdefault(cd.colname, Column(cd.colname, typ))
        if _calls_code(cd):
            t.has_triggers = True
        for c in cd.constraints or ():
            self._constraint(t, c)
        if recurse:
            for d in self.cat.children(t.id):
                child = self.cat.tables[d]
                col = child.columns.setdefault(cd.colname, Column(cd.colname, typ, local=False))
                col.inherited += 1
                self._add_column_below(child, cd.colname, typ)

    def _add_column_below(self, t: Table, name: str, typ: Key | None) -> None:
        for d in self.cat.children(t.id):
            child = self.cat.tables[d]
            col = child.columns.setdefault(name, Column(name, typ, local=False))
            col.inherited += 1
            self._add_column_below(child, name, typ)

    def _drop_column(
        self, t: Table, name: str, recurse: bool, missing_ok: bool, top: bool = True
    ) -> None:
        if name not in t.columns and not t.any_columns:
            return  # no such column: the server errors (or, IF EXISTS, skips)
        if top and name in t.columns and t.columns[name].inherited > 0:
            return  # "cannot drop inherited column": the statement fails, nothing changes
        if self.protected(t, column=True):
            self.refuse("drop_column", t, name)
        t.columns.pop(name, None)
        for d in self.cat.children(t.id):
            child = self.cat.tables[d]
            col = child.columns.get(name)
            if col is None:
                continue
            if recurse:
                col.inherited -= 1
                if col.inherited <= 0 and not col.local:
                    self._drop_column(child, name, recurse=True, missing_ok=True, top=False)
            else:
                # ONLY: the children keep it, as a column of their own
                col.inherited, col.local = max(0, col.inherited - 1), True

    # --- TRUNCATE --------------------------------------------------------------------------------

    def _TruncateStmt(self, node: Any) -> None:
        named: list[Table] = []
        for rv in node.relations or ():
            named.append(self.cat.resolve_rv(rv))
        reached: list[Table] = list(named)
        for rv, t in zip(node.relations or (), named, strict=True):
            if rv.inh or t.partitioned:
                reached += [self.cat.tables[d] for d in self.cat.descendants(t.id)]
        if node.behavior == DropBehavior.DROP_CASCADE:
            grew = True
            while grew:
                grew = False
                ids = {x.id for x in reached}
                for other in self.cat.tables.values():
                    if other.id not in ids and other.references & ids:
                        reached.append(other)
                        reached += [self.cat.tables[d] for d in self.cat.descendants(other.id)]
                        grew = True
        ids = {x.id for x in reached}
        if node.behavior != DropBehavior.DROP_CASCADE and any(
            other.id not in ids and other.references & ids for other in self.cat.tables.values()
        ):
            return  # "cannot truncate a table referenced in a foreign key": nothing happens
        seen: set[int] = set()
        for t in reached:
            if t.id in seen:
                continue
            seen.add(t.id)
            # each truncated table's own trigger judges it (its own heap, for the empty rule)
            if self.protected(t, truncate=True):
                self.refuse("truncate", t)
        for tid in seen:
            self.cat.tables[tid].maybe_rows = False
        if any(self.cat.tables[tid].has_triggers for tid in seen):
            self.opaque()  # ON TRUNCATE triggers run code

    # --- renames ---------------------------------------------------------------------------------

    def _RenameStmt(self, node: Any) -> None:
        rt = node.renameType
        if rt == ObjectType.OBJECT_TABLE and node.relation is not None and node.newname:
            rv = node.relation
            if self.cat.lookup(rv.schemaname, rv.relname) is None and (
                (self.cat.creation_schema(rv.schemaname), rv.relname) in self.cat.others
            ):
                return
            t = self.cat.resolve_rv(rv)
            self.cat.types.pop((t.schema, t.name), None)
            self.cat.rename(t, t.schema, node.newname)
        elif rt == ObjectType.OBJECT_COLUMN and node.relation is not None and node.subname:
            if node.relationType != ObjectType.OBJECT_TABLE:
                return
            t = self.cat.resolve_rv(node.relation)
            col = t.columns.pop(node.subname, None) or Column(node.subname)
            col.name, col.renamed = node.newname or col.name, True
            t.columns[col.name] = col
            for d in self.cat.descendants(t.id):
                child = self.cat.tables[d]
                if node.subname in child.columns:
                    c = child.columns.pop(node.subname)
                    c.name, c.renamed = col.name, True
                    child.columns[c.name] = c
        elif rt == ObjectType.OBJECT_SCHEMA and node.subname and node.newname:
            for t in self.cat.tables_in_schema(node.subname):
                self.cat.rename(t, node.newname, t.name)
            self.cat.schemas_renamed.add(node.newname)
            if node.subname in self.cat.schemas_created:
                self.cat.schemas_created.discard(node.subname)
                self.cat.schemas_created.add(node.newname)

    def _AlterObjectSchemaStmt(self, node: Any) -> None:
        if node.objectType != ObjectType.OBJECT_TABLE or node.relation is None:
            return
        rv = node.relation
        if self.cat.lookup(rv.schemaname, rv.relname) is None and node.missing_ok:
            return
        t = self.cat.resolve_rv(rv)
        new = str(node.newschema or "")
        if not new or new == t.schema or t.temp:
            return
        if new in self.opts.exclude_schemas and self.guarded(t):
            # moving a protected table out of protection (sql/060: ensure_guard)
            assert self._src is not None
            obj = ident_path(new, t.name)
            self.refusals.append(
                Refusal(
                    self._src.file,
                    self._src.line,
                    "uninstall",
                    obj,
                    ident_glob((new, t.name)),
                    self._src.sql,
                )
            )
            return
        self.cat.rename(t, new, t.name)
        if new not in SYSTEM_SCHEMAS and new not in self.opts.exclude_schemas:
            t.has_guard = True  # the ddl_command_end guard attaches it

"""Generic row operations; ``videos.py`` and ``clips.py`` are thin typed layers over these.

A :class:`Table` knows its writable columns (with their rules), natural key and cross-column
checks, so single-row and batch functions share one path: validate -> tuples -> one statement
(or one ``executemany`` / bulk load inside a transaction, so a bad row stores nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from opusclip_lib.db import validate
from opusclip_lib.db.backend import Backend, Params, Row, identifier
from opusclip_lib.db.connection import Executor
from opusclip_lib.db.errors import NotFoundError, ValidationError
from opusclip_lib.db.validate import Column

Method = Literal["batch", "bulk"]
_MISSING = object()
IN_CHUNK = 500  # values per ``IN (...)`` list: far below every backend's bind-parameter limit


class Table:
    """A table's writable columns (with their rules), natural key and cross-column checks."""

    def __init__(self, name: str, columns: Sequence[Column], *, key: Sequence[str] = ("id",),
                 fill: Callable[[dict[str, list[Any]]], None] | None = None,
                 relations: Sequence[Callable[[dict[str, list[Any]]], None]] = ()) -> None:
        self.name = identifier(name)
        self.spec = tuple(columns)
        for column in self.spec:
            identifier(column.name)
            column.label = f"{self.name}.{column.name}"
        self.columns = tuple(c.name for c in self.spec)
        self.by_name = {c.name: c for c in self.spec}
        self.key = tuple(key)
        self.fill = fill
        self.relations = tuple(relations)
        self.insert_sql = Backend.insert_sql(self.name, self.columns)
        self.insert_returning_sql = f"{self.insert_sql} RETURNING *"
        self.insert_name = f"insert {self.name}"

    def rows(self, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Validated rows as tuples in column order; all-or-nothing, column by column."""
        rows = _listed(rows, self.name)
        if not rows:
            return []
        unknown = set().union(*rows) - self.by_name.keys()
        if unknown:
            raise ValidationError(f"{self.name} has no writable column(s) {sorted(unknown)}")
        data: dict[str, list[Any]] = {}
        for column in self.spec:
            name, default = column.name, column.default
            if column.required:
                missing = [i for i, row in enumerate(rows) if name not in row]
                if missing:
                    raise column.error(f"{column.label} is required (missing in row "
                                       f"{missing[0]})")
                data[name] = column.prepare([row[name] for row in rows])
            else:
                data[name] = column.prepare([row.get(name, default) for row in rows])
        if self.fill is not None:
            self.fill(data)
        for relation in self.relations:
            relation(data)
        return list(zip(*data.values(), strict=True))

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """One validated row: the rules and messages of :meth:`rows`, value by value."""
        if not isinstance(values, Mapping):
            raise ValidationError(f"{self.name}: each row must be a mapping of column to value, "
                                  f"got {values!r:.80}")
        if not values.keys() <= self.by_name.keys():
            unknown = values.keys() - self.by_name.keys()
            raise ValidationError(f"{self.name} has no writable column(s) {sorted(unknown)}")
        prepared = []
        for column in self.spec:
            value = values.get(column.name, _MISSING)
            if value is _MISSING:
                if column.required:
                    raise column.error(f"{column.label} is required (missing in row 0)")
                value = column.default
            prepared.append(column.prepare_one(value))
        if self.fill is None and not self.relations:
            return tuple(prepared)
        data = {name: [value] for name, value in zip(self.columns, prepared, strict=True)}
        if self.fill is not None:
            self.fill(data)
        for relation in self.relations:
            relation(data)
        return tuple(column[0] for column in data.values())

    def changes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A validated partial row for an UPDATE (relations checked when all their columns are
        present; the database's CHECK constraints cover the rest)."""
        unknown = values.keys() - self.by_name.keys()
        if unknown:
            raise ValidationError(f"{self.name} has no writable column(s) {sorted(unknown)}")
        data = {name: self.by_name[name].prepare([value]) for name, value in values.items()}
        for relation in self.relations:
            relation(data)
        return {name: column[0] for name, column in data.items()}

    def lookup(self, column: str, value: Any) -> Any:
        """``value`` checked as a key to look ``column`` up by (the column's own rules, so a
        value no backend could store never reaches a driver), or its ``ValidationError``."""
        if column == "id":
            return validate.row_id(value, name=f"{self.name}.id")
        return self.by_name[column].prepare([value])[0]

    def column(self, name: str) -> str:
        if name != "id" and name not in self.by_name:
            raise ValidationError(f"{self.name} has no column {name!r}")
        return name


def _listed(rows: Iterable[Mapping[str, Any]], table: str) -> list[Mapping[str, Any]]:
    """``rows`` as a list of mappings, or the ``ValidationError`` saying what came instead."""
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise ValidationError(f"{table}: expected an iterable of rows (mappings), got {rows!r:.80}")
    listed = rows if isinstance(rows, list) else list(rows)
    if not set(map(type, listed)) <= {dict} and not all(
            isinstance(row, Mapping) for row in listed):
        bad = next(row for row in listed if not isinstance(row, Mapping))
        raise ValidationError(f"{table}: each row must be a mapping of column to value, "
                              f"got {bad!r:.80}")
    return listed


async def fetch_in(ex: Executor, sql: str, values: Sequence[Any], *, name: str) -> list[Row]:
    """``sql`` with ``{marks}`` standing for an ``IN`` list, run over ``values`` in chunks."""
    rows: list[Row] = []
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start:start + IN_CHUNK]
        rows += await ex.fetch(sql.format(marks=", ".join("?" * len(chunk))), chunk, name=name)
    return rows


async def insert_one(ex: Executor, table: Table, values: Mapping[str, Any]) -> Row:
    row = await ex.fetchrow(table.insert_returning_sql, table.row(values),
                            name=table.insert_name)
    assert row is not None
    return row


async def insert_many(ex: Executor, table: Table, rows: Iterable[Mapping[str, Any]], *,
                      method: Method = "batch") -> int:
    """Validate every row first, then load all of them in one transaction."""
    if method not in ("batch", "bulk"):
        raise ValidationError(f"method must be 'batch' or 'bulk', got {method!r}")
    prepared = table.rows(rows)
    if not prepared:
        return 0
    async with ex.transaction() as tx:
        if method == "bulk":
            return await tx.bulk_insert(table.name, table.columns, prepared,
                                        name=f"bulk insert {table.name}")
        return await tx.executemany(table.insert_sql, prepared, name=f"batch insert {table.name}")


async def upsert_many(ex: Executor, table: Table, rows: Iterable[Mapping[str, Any]], *,
                      update: Sequence[str] | None = None) -> int:
    """Insert, or overwrite the ``update`` columns (default: every writable column) of the row
    with the same natural key."""
    prepared = table.rows(rows)
    if not prepared:
        return 0
    backend = ex.backend
    if update is None:
        update = [c for c in table.columns if c not in table.key]
    else:
        update = [table.column(c) for c in update]
    sql = backend.upsert_sql(table.name, table.columns, table.key, update,
                             touch=f"updated_at = {backend.now}")
    async with ex.transaction() as tx:
        return await tx.executemany(sql, prepared, name=f"upsert {table.name}")


async def update_many(ex: Executor, table: Table, rows: Iterable[Mapping[str, Any]], *,
                      key: str = "id") -> int:
    """Apply per-row changes; every mapping has ``key`` plus the same set of columns."""
    rows = _listed(rows, table.name)
    if not rows:
        return 0
    key = table.column(key)
    first = rows[0].keys()
    if any(row.keys() != first for row in rows):
        raise ValidationError("update rows must all set the same columns")
    columns = [c for c in first if c != key]
    unknown = set(columns) - table.by_name.keys()
    if unknown:
        raise ValidationError(f"{table.name} has no writable column(s) {sorted(unknown)}")
    data = {c: table.by_name[c].prepare([row[c] for row in rows]) for c in columns}
    for relation in table.relations:
        relation(data)
    keys = [table.lookup(key, row[key]) for row in rows]
    params = list(zip(*data.values(), keys, strict=True))
    sets = ", ".join(f"{c} = ?" for c in columns)
    sql = f"UPDATE {table.name} SET {sets}, updated_at = {ex.backend.now} WHERE {key} = ?"
    async with ex.transaction() as tx:
        return await tx.executemany(sql, params, name=f"batch update {table.name}")


async def update_returning(ex: Executor, table: str, row_id: int, assignments: str,
                           params: Params, *, condition: str = "",
                           condition_params: Params = (), name: str) -> Row | None:
    """``UPDATE ... WHERE id = ? {condition}`` and the row after it, or ``None`` if no match.

    One statement where ``UPDATE ... RETURNING`` exists, else UPDATE + SELECT in a transaction.
    """
    sql = f"UPDATE {table} SET {assignments} WHERE id = ?{condition}"
    values = (*params, row_id, *condition_params)
    if ex.backend.update_returning:
        return await ex.fetchrow(f"{sql} RETURNING *", values, name=name)
    async with ex.transaction() as tx:
        if not await tx.execute(sql, values, name=name):
            return None
        return await tx.fetchrow(f"SELECT * FROM {table} WHERE id = ?", (row_id,), name=name)


async def update_one(ex: Executor, table: Table, row_id: int, values: Mapping[str, Any]) -> Row:
    row_id = validate.row_id(row_id, name=f"{table.name}.id")
    changes = table.changes(values)
    if not changes:
        return await get_one(ex, table, row_id)
    assignments = "".join(f"{c} = ?, " for c in changes) + f"updated_at = {ex.backend.now}"
    row = await update_returning(ex, table.name, row_id, assignments, tuple(changes.values()),
                                 name=f"update {table.name}")
    if row is None:
        raise NotFoundError(f"{table.name} id={row_id} does not exist", backend=ex.backend.name)
    return row


async def get_one(ex: Executor, table: Table, row_id: int) -> Row:
    row = await find_one(ex, table, "id", row_id)
    if row is None:
        raise NotFoundError(f"{table.name} id={row_id} does not exist", backend=ex.backend.name)
    return row


async def find_one(ex: Executor, table: Table, column: str, value: Any) -> Row | None:
    value = table.lookup(table.column(column), value)
    return await ex.fetchrow(f"SELECT * FROM {table.name} WHERE {column} = ?",
                             (value,), name=f"get {table.name}")


def _where(table: Table, filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in filters.items():
        if value is None:
            continue
        clauses.append(f"{table.column(column)} = ?")
        params.append(table.lookup(column, value))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


async def list_where(ex: Executor, table: Table, filters: Mapping[str, Any], *,
                     order_by: str = "id", limit: int = 100, offset: int = 0) -> list[Row]:
    """Rows matching every non-``None`` filter, ``order_by`` a column (``-col`` descending)."""
    where, params = _where(table, filters)
    descending = order_by.startswith("-")
    order = table.column(order_by.lstrip("-")) + (" DESC" if descending else "")
    return await ex.fetch(f"SELECT * FROM {table.name}{where} ORDER BY {order} LIMIT ? OFFSET ?",
                          (*params, validate.count(limit, name="limit"),
                           validate.count(offset, name="offset", low=0)),
                          name=f"list {table.name}")


async def count_where(ex: Executor, table: Table, filters: Mapping[str, Any]) -> int:
    where, params = _where(table, filters)
    return int(await ex.fetchval(f"SELECT count(*) AS n FROM {table.name}{where}", params,
                                 name=f"count {table.name}"))


async def delete_one(ex: Executor, table: Table, row_id: int) -> None:
    row_id = validate.row_id(row_id, name=f"{table.name}.id")
    if not await ex.execute(f"DELETE FROM {table.name} WHERE id = ?", (row_id,),
                            name=f"delete {table.name}"):
        raise NotFoundError(f"{table.name} id={row_id} does not exist", backend=ex.backend.name)

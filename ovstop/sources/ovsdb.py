"""An in-memory replica of the OVSDB tables ovstop reads, kept current by the ``ovs`` library's IDL, and
the counter maps (Interface statistics) beside it (:mod:`ovstop.sources.ovsdb_counters`).

The IDL monitors only the requested columns, so a sample reads local memory instead of issuing a
query. The schema is fetched from the server (``get_schema``) rather than from a packaged file so
that any OVS or OVN version works; columns the server's schema lacks are skipped, not errors.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import ovs.db.idl
import ovs.poller

from ovstop.errors import SourceError
from ovstop.sources import deadline, jsonrpc
from ovstop.sources.ovsdb_counters import CounterMonitor, Counters

Row = dict[str, Any]

OPEN_VSWITCH_TABLES: dict[str, tuple[str, ...]] = {
    "Open_vSwitch": (
        "ovs_version",
        "db_version",
        "datapath_types",
        "other_config",
        "external_ids",
        "bridges",
    ),
    "Bridge": ("name", "ports", "datapath_type", "other_config", "external_ids", "fail_mode", "flow_tables"),
    "Flow_Table": ("name",),
    "Port": ("name", "interfaces", "external_ids", "tag"),
    "Interface": (
        "name",
        "type",
        "ofport",
        "link_state",
        "admin_state",
        "mtu",
        "options",
        "external_ids",
        "link_speed",
        "duplex",
        "status",
        "bfd_status",
        "cfm_fault",
        "cfm_flap_count",
        "link_resets",
        "ifindex",
        "error",
    ),
}

OPEN_VSWITCH_COUNTERS: dict[str, str] = {"Interface": "statistics"}
"""Counter maps monitored outside the IDL (see :mod:`ovstop.sources.ovsdb_counters`), read with
:meth:`OvsdbSource.counters`, not as columns of :meth:`OvsdbSource.rows`."""


_SCALARS = frozenset({str, int, float, bool})
"""Types that are plain already: a map of them (external_ids, options) is copied without a call per cell."""


def _plain(value: Any) -> Any:
    """IDL values as plain Python: rows become their uuid strings, containers are copied."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, ovs.db.idl.Row):
        return str(value.uuid)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        if all(type(k) in _SCALARS and type(v) in _SCALARS for k, v in value.items()):
            return dict(value)
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def _fetch_schema(remote: str, database: str, timeout: float) -> dict[str, Any]:
    try:
        conn = jsonrpc.connect(remote, timeout)
    except jsonrpc.RpcError as exc:
        raise SourceError(f"OVSDB: {exc}") from None
    try:
        return jsonrpc.transact(conn, "get_schema", [database], timeout)
    except jsonrpc.RpcError as exc:
        raise SourceError(f"OVSDB at {remote}: {exc}") from None
    finally:
        conn.close()


class _ChangeTrackingIdl(ovs.db.idl.Idl):
    """The IDL, noting which rows (and of an updated row, which columns) each update touched, through its
    ``notify`` hook."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: dict[str, dict[uuid.UUID, set[str] | None]] = {}
        """Table name -> uuid -> the columns changed since the replica last converted the table (None: the
        whole row, created or deleted)."""

    def run(self) -> Any:
        changed = super().run()
        # Received from the next message on through ovstop's connection, which decodes with the standard
        # library's C decoder (ovstop.sources.jsonrpc).
        jsonrpc.Connection.adopt_session(self._session)
        return changed

    def notify(self, event: str, row: ovs.db.idl.Row, updates: ovs.db.idl.Row | None = None) -> None:
        rows = self.changed.setdefault(row._table.name, {})
        # An update's old values are exactly the columns that changed; without them, the whole row did.
        old = getattr(updates, "_data", None) if event == ovs.db.idl.ROW_UPDATE else None
        if old is None:
            rows[row.uuid] = None
        elif (columns := rows.setdefault(row.uuid, set())) is not None:
            columns.update(old)


class OvsdbSource:
    """A monitored replica of selected columns of one database on one OVSDB server."""

    def __init__(
        self,
        remote: str,
        database: str = "Open_vSwitch",
        tables: Mapping[str, tuple[str, ...]] = OPEN_VSWITCH_TABLES,
        timeout: float = 3.0,
        counters: Mapping[str, str] = OPEN_VSWITCH_COUNTERS,
    ) -> None:
        self.remote = remote
        self.database = database
        self.timeout = timeout
        self._tables = dict(tables)
        self._counter_columns = dict(counters)
        self._counters: CounterMonitor | None = None  # None also while the server's schema has none of them
        self._idl: _ChangeTrackingIdl | None = None
        self._loading: _ChangeTrackingIdl | None = None
        self.columns: dict[str, tuple[str, ...]] = {}
        # table -> (the IDL's change_seqno when converted, rows): several collectors read the same table
        # each round, and most rounds nothing changed; converting 1,000 Interface rows is milliseconds.
        self._converted: dict[str, tuple[int, list[Row]]] = {}
        # table -> row uuid -> (the IDL's row, its converted dict): see _convert.
        self._rows: dict[str, dict[uuid.UUID, tuple[ovs.db.idl.Row, Row]]] = {}
        self._opened = 0  # IDLs opened so far: a new one's change_seqno starts over

    def _start(self) -> _ChangeTrackingIdl:
        timeout = deadline.budget(self.timeout, f"OVSDB {self.remote}")
        schema = _fetch_schema(self.remote, self.database, timeout)
        if not isinstance(schema, dict):
            raise SourceError(f"OVSDB at {self.remote} answered get_schema with a {type(schema).__name__}")
        helper = ovs.db.idl.SchemaHelper(schema_json=schema)
        present = schema.get("tables", {})
        for table, wanted in self._tables.items():
            if table not in present:
                continue
            cols = tuple(c for c in wanted if c in present[table].get("columns", {}))
            self.columns[table] = cols
            helper.register_columns(table, list(cols))
        counters = {
            table: column
            for table, column in self._counter_columns.items()
            if column in present.get(table, {}).get("columns", {})
        }
        if counters and self._counters is None:
            self._counters = CounterMonitor(self.remote, self.database, counters)
        return _ChangeTrackingIdl(self.remote, helper, leader_only=False)

    def _open(self) -> _ChangeTrackingIdl:
        """The IDL once it has the database's contents. A large database may take longer than a round has:
        the IDL being filled is kept, and the next round goes on from where this one stopped."""
        if self._loading is None:
            self._loading = self._start()
        idl = self._loading
        until = time.monotonic() + deadline.budget(self.timeout, f"OVSDB {self.remote}")
        counters = self._counters
        while not idl.has_ever_connected() or (counters is not None and not counters.ready):
            idl.run()
            if counters is not None:
                counters.run()
            if time.monotonic() > until:
                if not idl._session.is_connected():  # the server went away: start over (fast) next round
                    idl.close()
                    self._loading = None
                raise SourceError(f"OVSDB at {self.remote} did not send {self.database} contents in time")
            poller = ovs.poller.Poller()
            idl.wait(poller)
            if counters is not None:
                counters.wait(poller)
            poller.timer_wait(50)
            poller.block()
        self._loading = None
        return idl

    def refresh(self) -> None:
        """Apply every update the server has sent since the last call (non-blocking once connected).

        What the server sends is read by the ``ovs`` library, which raises what it likes on a reply it
        cannot read (a schema that is not one, a malformed update): that is this source failing, not ovstop.
        """
        try:
            if self._idl is None:
                self._idl = self._open()
                self._opened += 1
            self._idl.run()
            if self._counters is not None:
                self._counters.run()
        except SourceError:
            raise
        except Exception as exc:
            self.close()
            raise SourceError(f"OVSDB at {self.remote} sent what ovstop cannot read: {exc!r:.200}") from None
        # The IDL reconnects by itself (with backoff) and then resends its monitors; until it has, the
        # replica is stale. The library exposes connection state only on its session object.
        if not self._idl._session.is_connected():
            raise SourceError(f"lost the OVSDB connection to {self.remote}; reconnecting")
        if self._counters is not None and not self._counters.ready:
            raise SourceError(f"OVSDB at {self.remote}: waiting for interface statistics after reconnecting")

    @property
    def generation(self) -> tuple[int, int]:
        """Equal between two reads exactly when no row of any table changed in between (nor the connection
        was opened anew): what is derived from the rows (the topology join) is kept while it stays equal."""
        if self._idl is None:
            raise SourceError(f"OVSDB at {self.remote} is not connected")
        return (self._opened, self._idl.change_seqno)

    def counters(self, table: str) -> Mapping[str, Counters]:
        """Row uuid -> the counter map of ``table`` (Interface ``statistics``); a row with none may be absent.

        A new mapping, and a new map for each row that changed, after an update; the same objects otherwise.
        A change of counters is not a change of :attr:`generation`."""
        if self._idl is None:
            raise SourceError(f"OVSDB at {self.remote} is not connected")
        return self._counters.counters(table) if self._counters is not None else {}

    def rows(self, table: str) -> list[Row]:
        """Every row of ``table`` as a plain dict (``_uuid`` plus the monitored columns).

        The dicts are shared by every caller until the replica changes: read them, do not modify them.
        """
        if self._idl is None:
            raise SourceError(f"OVSDB at {self.remote} is not connected")
        seqno = self._idl.change_seqno
        cached = self._converted.get(table)
        if cached is None or cached[0] != seqno:
            cached = self._converted[table] = (seqno, self._convert(table))
        return list(cached[1])

    def _convert(self, table: str) -> list[Row]:
        """The table's rows as plain dicts, converting only what the IDL reported as changed.

        Converting a row (the IDL's ``to_python`` of every cell, and a copy) costs microseconds a cell: the
        1,008 rows of a 1,000-port Interface table took 157 ms, and a status or state cell changes now and
        then. A row the IDL did not report
        (see :class:`_ChangeTrackingIdl`) and that is still the same row object (not one from a
        reconnection) keeps its converted dict; of an updated row, only the changed columns are converted.
        """
        idl = self._idl
        if idl is None:
            raise SourceError(f"OVSDB {self.remote}: not connected")
        idl_table = idl.tables.get(table)
        if idl_table is None:
            return []
        cols = self.columns.get(table, ())
        # Optional scalars ("0 or 1 value") come from the IDL as lists; present them as value-or-None.
        types = {c: idl_table.columns[c].type for c in cols}
        singular = {c for c, t in types.items() if not t.is_map() and t.n_max == 1}
        monitored = set(cols)
        changed = idl.changed.pop(table, {})
        before = self._rows.get(table, {})
        now: dict[uuid.UUID, tuple[ovs.db.idl.Row, Row]] = {}
        out = []
        for row_uuid, row in idl_table.rows.items():
            known = before.get(row_uuid)
            if known is None or known[0] is not row:
                plain = self._plain_row(row, cols, singular)
            elif row_uuid in changed:
                columns = changed[row_uuid]
                plain = self._plain_row(row, cols if columns is None else columns & monitored, singular, known[1])
            else:
                plain = known[1]
            now[row_uuid] = (row, plain)
            out.append(plain)
        self._rows[table] = now
        return out

    @staticmethod
    def _plain_row(row: ovs.db.idl.Row, cols: Iterable[str], singular: set[str], known: Row | None = None) -> Row:
        """``row`` as a new dict: ``cols`` converted, the other columns taken from ``known``.

        A cell is read from the row's received data (``_data``): the attribute the IDL offers first folds in
        changes made locally, converting a map or set cell three times (to Python, back, to Python again);
        the replica never writes, so once is the same value (a 1,000-interface update converted
        in a third of the time).
        """
        plain: Row = dict(known) if known is not None else {"_uuid": str(row.uuid)}
        received = row._data or {}
        for col in cols:
            datum = received.get(col)
            value = _plain(getattr(row, col) if datum is None else datum.to_python(row._uuid_to_row))
            if col in singular and isinstance(value, list):
                value = value[0] if value else None
            plain[col] = value
        return plain

    def close(self) -> None:
        for idl in (self._idl, self._loading):
            if idl is not None:
                idl.close()
        if self._counters is not None:
            self._counters.close()
        self._idl = self._loading = self._counters = None
        self._converted.clear()
        self._rows.clear()

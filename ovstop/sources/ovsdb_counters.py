"""Counter columns of an OVSDB database (Interface ``statistics``), monitored beside the IDL on their own connection.

Interface statistics are most of what an Open_vSwitch database changes: ovs-vswitchd rewrites every busy
interface's map every ``stats-update-interval`` (5 s by default). Applied by the ``ovs`` library's IDL, an
update of 600 interfaces cost 16 to 23 ms of CPU (a ``Datum`` per cell, checked, diffed, converted back to
Python), and as a change of the replica it also made the Bridge-Port-Interface join be made again. Nothing
joins on a counter map and ovstop never writes one, so this monitor (``monitor_cond``, one column per table)
keeps each row's map as a plain dict, decoded by the standard library's C JSON decoder and updated from
the server's diffs.

The maps are read as one mapping per table (row uuid -> map): a new mapping, and a new map for each row that
changed, after every update; the same objects otherwise, so that what is made of them can be kept by identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import ovs.jsonrpc
import ovs.poller

from ovstop.errors import SourceError
from ovstop.sources import jsonrpc

Counters = Mapping[str, int]
"""One row's counter map, e.g. ``{"rx_packets": 12, "tx_bytes": 3456}``."""

_EMPTY: dict[str, dict[str, int]] = {}

_MESSAGES_PER_RUN = 1000
"""At most this many messages are applied per :meth:`CounterMonitor.run`, so a flood cannot hold a round."""


class CounterMonitor:
    """A monitor of one integer-map column per table (``{"Interface": "statistics"}``) on one OVSDB server."""

    def __init__(self, remote: str, database: str, columns: Mapping[str, str]) -> None:
        self.remote = remote
        self.database = database
        self.columns = dict(columns)
        self._session = ovs.jsonrpc.Session.open(remote)
        self._seqno: int | None = None
        self._monitor_id = str(uuid.uuid4())
        self._request_id: Any = None  # the monitor request's id until its reply arrives
        self._maps: dict[str, dict[str, dict[str, int]]] = {}
        self.ready = False
        """True once the server's reply to this connection's monitor request has been applied."""
        self._refused: str | None = None  # why the server refused this connection's monitor request

    def counters(self, table: str) -> Mapping[str, Counters]:
        """Row uuid -> its map in ``table`` (rows whose map is empty may be absent)."""
        return self._maps.get(table, _EMPTY)

    def run(self) -> None:
        """Apply what the server sent since the last call, (re)sending the monitor request on a new connection.

        Raises SourceError on what cannot be read as the monitor's messages."""
        session = self._session
        session.run()
        if not session.is_connected():
            self.ready = False
            return
        if session.get_seqno() != self._seqno:  # a new connection since the last call
            self._seqno = session.get_seqno()
            self.ready = False
            self._refused = None
            self._request()
        if self._refused is not None:  # said again each round until a new connection asks again
            raise SourceError(self._refused)
        jsonrpc.Connection.adopt_session(session)  # decoded by the C decoder (see ovstop.sources.jsonrpc)
        for _ in range(_MESSAGES_PER_RUN):
            msg = session.recv()
            if msg is None:
                break
            try:
                self._receive(msg)
            except SourceError:
                if self._refused is None:  # an update read in part: start over with a new connection's contents
                    self._maps, self.ready = {}, False
                    session.force_reconnect()
                raise

    def wait(self, poller: ovs.poller.Poller) -> None:
        self._session.wait(poller)
        self._session.recv_wait(poller)

    def close(self) -> None:
        self._session.close()
        self._maps = {}
        self.ready = False

    def _request(self) -> None:
        requests = {table: [{"columns": [column]}] for table, column in self.columns.items()}
        msg = ovs.jsonrpc.Message.create_request("monitor_cond", [self.database, self._monitor_id, requests])
        self._request_id = msg.id
        self._session.send(msg)

    def _receive(self, msg: ovs.jsonrpc.Message) -> None:
        if msg.type in (ovs.jsonrpc.Message.T_REPLY, ovs.jsonrpc.Message.T_ERROR) and msg.id == self._request_id:
            self._request_id = None
            if msg.type == ovs.jsonrpc.Message.T_ERROR:
                self._refused = f"OVSDB at {self.remote} refused to monitor counters: {str(msg.error)!r:.200}"
                raise SourceError(self._refused)
            self._maps = {}
            self._apply(msg.result)
            self.ready = True
        elif (
            msg.type == ovs.jsonrpc.Message.T_NOTIFY
            and msg.method == "update2"
            and isinstance(msg.params, list)
            and len(msg.params) == 2
            and msg.params[0] == self._monitor_id
        ):
            self._apply(msg.params[1])

    def _apply(self, updates: object) -> None:
        """Fold ``<table-updates2>`` into the maps: each table touched gets a new mapping, each row a new map."""
        if not isinstance(updates, dict):
            raise self._unreadable("table updates", updates)
        for table, rows in updates.items():
            column = self.columns.get(table)
            if column is None or not isinstance(rows, dict):
                raise self._unreadable(f"updates of table {table!r}", rows)
            maps = dict(self._maps.get(table, _EMPTY))
            for row_uuid, change in rows.items():
                if not isinstance(change, dict) or len(change) != 1:
                    raise self._unreadable(f"row update of {row_uuid!r:.60}", change)
                ((op, cells),) = change.items()
                if op == "delete":
                    maps.pop(row_uuid, None)
                elif op in ("initial", "insert"):
                    maps[row_uuid] = self._map(cells, column, {})
                elif op == "modify":
                    maps[row_uuid] = self._map(cells, column, maps.get(row_uuid, {}), diff=True)
                else:
                    raise self._unreadable(f"row update of {row_uuid!r:.60}", change)
            self._maps[table] = maps

    def _map(self, cells: object, column: str, old: dict[str, int], diff: bool = False) -> dict[str, int]:
        """The row's new map from its cells (``{column: ["map", [[key, value], ...]]}``).

        A diff (``modify``) names only changed keys: a key with the value it had is removed, any other set."""
        if not isinstance(cells, dict):
            raise self._unreadable(f"{column} cells", cells)
        datum = cells.get(column)
        if datum is None:
            return old if diff else {}
        if not (isinstance(datum, list) and len(datum) == 2 and datum[0] == "map" and isinstance(datum[1], list)):
            raise self._unreadable(column, datum)
        new = dict(old) if diff else {}
        try:
            for key, value in datum[1]:
                if type(key) is not str or type(value) is not int:
                    raise ValueError
                if diff and new.get(key) == value and key in new:
                    del new[key]
                else:
                    new[key] = value
        except (TypeError, ValueError):
            raise self._unreadable(column, datum) from None
        return new

    def _unreadable(self, what: str, value: object) -> SourceError:
        return SourceError(f"OVSDB at {self.remote} sent {what} ovstop cannot read: {value!r:.120}")

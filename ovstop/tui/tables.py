"""Keyed DataTable updates: only the rows and cells that changed are touched (dolphie's approach)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable


def sync_rows(table: DataTable, wanted: dict[str, tuple[Text, ...]], grow: bool = False) -> None:
    """Make ``table`` hold exactly ``wanted`` rows (keyed), touching only cells whose text changed.

    ``grow`` lets changed cells widen their column (costly: the whole table is measured again)."""
    current = {str(k.value) for k in table.rows}
    for key in current - wanted.keys():
        table.remove_row(key)
    columns = list(table.columns)
    for key, cells in wanted.items():
        if key not in current:
            table.add_row(*cells, key=key)
            continue
        old = table.get_row(key)
        for col, (before, after) in zip(columns, zip(old, cells, strict=True), strict=True):
            if str(before) != after.plain:
                table.update_cell(key, col, after, update_width=grow)

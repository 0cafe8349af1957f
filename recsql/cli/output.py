"""The CLI's one output layer: every listing is a list of records, printed either as an
aligned table for people or, with ``--json``, as JSON for scripts.

Commands never format columns by hand: they describe their columns once
(:class:`Column`) and hand the records to :func:`show`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import click
import numpy as np


@dataclass(frozen=True)
class Column:
    """One column of a table: the record field, its header and how a value is written."""

    field: str
    header: str | None = None
    format: str = ""  # a format spec for the value, e.g. ".4f"
    align: str = ">"  # ">" right (numbers), "<" left (text)

    def cell(self, record: Mapping[str, Any]) -> str:
        value = record.get(self.field)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, datetime):
            return f"{value:%Y-%m-%d %H:%M:%S}"
        return format(value, self.format) if self.format else str(value)


def records(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Dataclasses (or mappings) as plain dicts."""
    return [dataclasses.asdict(i) if dataclasses.is_dataclass(i) else dict(i) for i in items]  # type: ignore[arg-type]


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """An aligned text table, two spaces between columns, widths from the content."""
    headers = [c.header if c.header is not None else c.field for c in columns]
    cells = [[c.cell(row) for c in columns] for row in rows]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    lines = [[f"{h:{c.align}{w}}" for h, c, w in zip(headers, columns, widths)]]
    lines += [[f"{v:{c.align}{w}}" for v, c, w in zip(line, columns, widths)] for line in cells]
    return "\n".join("  ".join(parts).rstrip() for parts in lines)


def to_json(value: Any, indent: int | None = 2) -> str:
    """JSON of records: datetimes as ISO 8601, numpy scalars as numbers, NaN as null."""
    return json.dumps(_plain(value), indent=indent, allow_nan=False)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def show(rows: Sequence[Any], columns: Sequence[Column], *, as_json: bool, document: Any = None) -> None:
    """Print ``rows`` as a table, or ``document`` (default: the rows) as JSON."""
    if as_json:
        click.echo(to_json(rows if document is None else document))
    else:
        click.echo(table(records(rows), columns))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")

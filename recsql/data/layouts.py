"""Custom layouts: files of the caller's own layout, described by ``columns``,
``delimiter`` and ``header`` (the CLI's --columns, --delimiter, --no-header).

``columns`` says which column holds each of recsql's fields, by header name
(case-insensitive; columns not named are ignored) or, without a header, by position from
1 (default: the tutorial order).  The records are read by the same tokenizer as the
built-in formats (:mod:`recsql.data.reader`), so quotes, byte-order marks, line numbers
and refusals work alike.  Options that cannot be read are an InvalidParameter naming the
accepted fields; a header that lacks a named column is an InputError that suggests the
options that would read it.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsql.data.checks import shown
from recsql.data.formats import FIELDS, LAYOUTS, REQUIRED, Layout, columns_template, guess_columns
from recsql.data.reader import Column, Records, file_text
from recsql.errors import InputError, InvalidParameter

CUSTOM = "custom"
_EXAMPLES = {"ratings": "user=customer,movie=item,rating=stars", "movies": "movie=id,title=name,genres=category"}
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t"}

ColumnsArg = str | Mapping[str, str | int]


@dataclass(frozen=True)
class CustomLayout:
    """Where a file of the caller's layout keeps each field: (field, header name) pairs
    with a header, (field, 1-based position) pairs without; empty: the built-in header
    names with a header, the tutorial order without."""

    kind: str
    columns: tuple[tuple[str, str | int], ...]
    delimiter: str = ","
    header: bool = True


def _fields_help(kind: str) -> str:
    fields = FIELDS[kind]
    required, optional = fields[: REQUIRED[kind]], fields[REQUIRED[kind] :]
    return (
        f"the {kind} fields are {', '.join(required)} (required) and {', '.join(optional)} (optional), "
        f"e.g. --columns {_EXAMPLES[kind]}"
    )


def custom_layout(
    kind: str, columns: ColumnsArg | None, delimiter: str | None, header: bool, format: str | None = None
) -> CustomLayout | None:
    """The layout ``columns``, ``delimiter`` and ``header`` describe (None when all three
    are left out: the format is detected).  Raises InvalidParameter, naming the accepted
    fields, for anything it cannot read.

    ``columns``: ``"user=customer,movie=item,rating=stars"`` or ``{"user": "customer", ...}``;
    header names with a header, positions from 1 (``user=1,movie=2,rating=3``) without.
    """
    if columns is None and delimiter is None and header:
        return None
    if format is not None:
        raise InvalidParameter(
            "--format reads a built-in layout; leave it out with --columns, --delimiter or --no-header"
        )
    sep = _delimiter(delimiter if delimiter is not None else ",")
    if columns is None:
        return CustomLayout(kind, (), sep, header)
    return CustomLayout(kind, _resolved(kind, _column_pairs(kind, columns), header), sep, header)


def _delimiter(value: str) -> str:
    sep = _DELIMITER_NAMES.get(value.lower(), value) if isinstance(value, str) else ""
    if len(sep) != 1 or not (sep == "\t" or (sep in string.punctuation and sep not in '".+-')):
        raise InvalidParameter(
            f"a delimiter is one character: tab (or \\t) or punctuation other than \" . + - (e.g. ';' or '|'), "
            f"not {value!r}"
        )
    return sep


def _column_pairs(kind: str, columns: ColumnsArg) -> dict[str, object]:
    """The fields ``columns`` names (lower-cased) and their columns, as given."""
    fields = FIELDS[kind]
    malformed = InvalidParameter(
        f"--columns takes FIELD=COLUMN pairs separated by commas, not {columns!r}; {_fields_help(kind)}"
    )
    pairs: dict[str, object] = {}
    if isinstance(columns, str):
        for part in columns.split(","):
            field, equals, column = part.partition("=")
            if not equals or not field.strip() or not column.strip():
                raise malformed
            if field.strip().lower() in pairs:
                raise InvalidParameter(f"--columns names the field {field.strip()!r} twice; {_fields_help(kind)}")
            pairs[field.strip().lower()] = column
    elif isinstance(columns, Mapping) and columns:
        pairs = {str(field).strip().lower(): column for field, column in columns.items()}
    else:
        raise malformed
    unknown = [field for field in pairs if field not in fields]
    if unknown:
        raise InvalidParameter(f"unknown field {unknown[0]!r} in --columns; {_fields_help(kind)}")
    missing = [field for field in fields[: REQUIRED[kind]] if field not in pairs]
    if missing:
        raise InvalidParameter(f"--columns does not name {' or '.join(missing)}; {_fields_help(kind)}")
    return pairs


def _resolved(kind: str, pairs: dict[str, object], header: bool) -> tuple[tuple[str, str | int], ...]:
    """(field, header name) pairs with a header, (field, position) without, in field
    order; no column given to two fields."""
    fields = FIELDS[kind]
    resolved: list[tuple[str, str | int]] = []
    for field in (f for f in fields if f in pairs):
        value = pairs[field]
        if header:
            if not isinstance(value, str) or not value.strip():
                raise InvalidParameter(
                    f"with a header line, --columns names its columns ({field}={value!r} names none); "
                    "positions from 1 need --no-header"
                )
            resolved.append((field, value.strip()))
        else:
            text = value.strip() if isinstance(value, str) else None
            if isinstance(value, int) and not isinstance(value, bool):
                position = value
            elif text is not None and re.fullmatch(r"[0-9]{1,9}", text):
                position = int(text)
            else:
                position = 0
            if position < 1:
                raise InvalidParameter(
                    f"without a header line, --columns gives positions from 1 ({field}={value!r} is none), "
                    f"e.g. --columns {','.join(f'{f}={i}' for i, f in enumerate(fields[: REQUIRED[kind]], 1))}"
                )
            resolved.append((field, position))
    seen: dict[object, str] = {}
    for field, named in resolved:
        key = named.casefold() if isinstance(named, str) else named
        if key in seen:
            raise InvalidParameter(f"--columns gives {seen[key]} and {field} the same column {named!r}")
        seen[key] = field
    return tuple(resolved)


def read_custom(path: Path, data: bytes, custom: CustomLayout) -> tuple[dict[str, Column], np.ndarray]:
    """The named columns of every data row, by field (in field order), and each row's
    line in the file."""
    layout = Layout(custom.delimiter, None, 0)
    # A tab that ends the file ends an empty last field there, not trailing space.
    records = Records(path, file_text(path, data, layout, "\r\n\t ".replace(custom.delimiter, "")), layout)
    first = records.first()
    fields = len(first)
    if fields == 0:
        records.refuse("empty line", 1)
    if custom.header:
        positions = _header_positions(records, custom, [name.strip() for name in first])
        records.skip_first()
        why = " (as the header has)"
    else:
        columns = custom.columns or tuple(zip(FIELDS[custom.kind], range(1, 4)))
        beyond = [(field, column) for field, column in columns if int(column) > fields]
        if beyond:
            field, column = beyond[0]
            records.refuse(f"--columns reads {field} from column {column}, but this line has {fields}", 1)
        positions = {field: int(column) - 1 for field, column in columns}
        why = " (as line 1 has)"
    table, lines = records.columns(fields, list(positions.values()), why)
    if len(lines) == 0:
        raise InputError(path, "the file has a header but no data rows")
    return dict(zip(positions, table)), lines


def _header_positions(records: Records, custom: CustomLayout, names: list[str]) -> dict[str, int]:
    """Each field's column in the header ``names`` (case-insensitive; an exact match
    wins).  Without ``custom.columns``, the built-in headers' names."""
    folded = [name.casefold() for name in names]
    candidates = (
        [custom.columns]
        if custom.columns
        else [
            tuple(zip(FIELDS[custom.kind], lay.header))
            for lay in LAYOUTS[custom.kind].values()
            if lay.header is not None
        ]
    )
    for columns in candidates:
        if all(str(column).casefold() in folded for _, column in columns):
            break
    else:
        records.refuse(_unknown_header(custom, names, folded), 1)
    positions = {}
    for field, column in columns:
        exact = [i for i, name in enumerate(names) if name == column]
        loose = [i for i, name in enumerate(folded) if name == str(column).casefold()]
        found = exact or loose
        if len(found) > 1:
            records.refuse(f"the header has {len(found)} columns named {shown(str(column))} ({field})", 1)
        positions[field] = found[0]
    return positions


def _unknown_header(custom: CustomLayout, names: list[str], folded: list[str]) -> str:
    """Why a header does not name the columns, and the options that would read it."""
    listed = _listed(names)
    if re.match(r"[+-]?[0-9]", names[0]):
        listed += " (is it data? then use --no-header)"
    other = [sep for sep in ",;\t|" if len(names) == 1 and sep in names[0] and sep != custom.delimiter]
    if other:
        listed += f" (is the delimiter {other[0]!r}?)"
    if custom.columns:
        absent = [f"{shown(str(c))} ({f})" for f, c in custom.columns if str(c).casefold() not in folded]
        return f"the header has no column {' or '.join(absent)}; its columns: {listed}"
    guess = guess_columns(custom.kind, names)
    hint = f"--columns {shlex.quote(guess)}" if guess else columns_template(custom.kind)
    return f"the header is not a built-in one; name its columns: {hint}; its columns: {listed}"


def _listed(names: list[str], room: int = 160) -> str:
    """Header names as a message lists them: quoted, the first ``room`` characters' worth."""
    listed: list[str] = []
    for name in names:
        if listed and sum(len(s) + 2 for s in listed) + len(shown(name)) > room:
            return ", ".join(listed) + f" and {len(names) - len(listed)} more"
        listed.append(shown(name))
    return ", ".join(listed)

"""Field checks: a column of a file's fields (as the tokenizer split them) turned into
values, or refused with a message that names the first bad line and the field.

Every check works on a :class:`~recsql.data.reader.Column` a batch at a time (tens of
thousands of fields), never field by field in Python.  The common case, fields of plain
ASCII digits (and a decimal point, for ratings), is recognised and converted from the
batch's bytes at once; any other batch goes through the full rules (signs, whitespace,
exponents, the 64-bit range), which also find the first field that breaks them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recsql.data.formats import ML100K_GENRES, shown
from recsql.data.reader import JOIN, Column
from recsql.errors import InputError

BIGINT_MAX = "9223372036854775807"
BIGINT_MIN_DIGITS = "9223372036854775808"  # -2^63 is a BIGINT too

_POW10 = 10 ** np.arange(19, dtype=np.int64)


def _by_batch(column: Column, lines: np.ndarray, check: Callable[[str, np.ndarray], np.ndarray]) -> np.ndarray:
    """``check`` of each of the column's batches (its joined fields, their lines), in order:
    the first batch with a bad field holds the column's first bad field."""
    parts, at = [], 0
    for joined, size in zip(column.batches, column.sizes):
        parts.append(check(joined, lines[at : at + size]))
        at += size
    return np.concatenate(parts)


def _decimals(joined: str, point: bool, most: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Each field's digits as one integer, and how many of them follow the point, for
    fields (joined by NULs) that are all plain: 1 to ``most`` ASCII digits (``most`` <=
    18: no overflow) and, where ``point``, at most one point.  Worked out for all the
    fields at once, from their bytes; None for any other (signs, spaces, exponents...)."""
    if not joined.isascii():
        return None
    raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    digit, dot, sep = (raw >= 48) & (raw <= 57), raw == 46, raw == 0
    if not (digit | sep | (dot & point)).all():
        return None
    ends = np.append(np.flatnonzero(sep), len(raw))
    starts = np.concatenate(([0], ends[:-1] + 1))
    before = np.concatenate(([0], np.cumsum(digit, dtype=np.int32)))  # digits before each offset
    count = before[ends] - before[starts]
    field_of = np.cumsum(sep, dtype=np.int32)  # the field each byte (not a NUL) is in
    dots = np.flatnonzero(dot)
    field_of_dot = field_of[dots]
    if count.min() < 1 or count.max() > most or (np.diff(field_of_dot) == 0).any():
        return None
    at = np.flatnonzero(digit)
    exponent = before[ends[field_of[at]]] - before[at + 1]  # digits after this one in its field
    value = np.add.reduceat((raw[at].astype(np.int64) - 48) * _POW10[exponent], before[starts])
    decimals = np.zeros(len(count), dtype=np.int64)
    decimals[field_of_dot] = before[ends[field_of_dot]] - before[dots + 1]
    return value, decimals


def numbers(path: Path, column: Column, lines: np.ndarray, what: str) -> np.ndarray:
    """Finite decimal numbers (a ``nan``, ``inf`` or ``1e999`` is refused)."""
    return _by_batch(column, lines, lambda joined, at: _numbers(path, joined, at, what))


def _numbers(path: Path, joined: str, lines: np.ndarray, what: str) -> np.ndarray:
    plain = _decimals(joined, point=True, most=15)
    if plain is not None:  # digits < 2^53 over a power of ten <= 10^15, both exact: one rounding, as float()'s
        digits, decimals = plain
        return digits / _POW10[decimals].astype(np.float64)
    stripped = pd.Series(joined.split(JOIN), dtype=object).str.strip()
    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raw = stripped.iloc[i]
        if raw == "":
            reason = f"missing {what}"
        elif np.isinf(values[i]):
            reason = f"{what} {shown(raw)} is not a finite number"
        else:
            reason = f"{what} {shown(raw)} is not a number"
        raise InputError(path, reason, int(lines[i]))
    return values


def ids(path: Path, column: Column, lines: np.ndarray, what: str, kind: str) -> np.ndarray:
    """Integer ids, or with ``kind="text"`` the application's keys, exactly as given: any
    text but empty, and none with surrounding whitespace (refused, never stripped: " a"
    and "a" would be two keys)."""
    if kind != "text":
        return integers(path, column, lines, what)
    return _by_batch(column, lines, lambda joined, at: _keys(path, joined, at, what))


def _keys(path: Path, joined: str, lines: np.ndarray, what: str) -> np.ndarray:
    raw = pd.Series(joined.split(JOIN), dtype=object)
    stripped = raw.str.strip()
    bad = ((stripped == "") | (stripped != raw)).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))  # the first line with either fault
        reason = (
            f"missing {what}"
            if stripped.iloc[i] == ""
            else (
                f"{what} {shown(raw.iloc[i])} has surrounding whitespace; recsql stores keys exactly as given "
                "(so ' a' and 'a' would be different keys): remove the whitespace, including any spaces "
                "after a delimiter (as in a, b)"
            )
        )
        raise InputError(path, reason, int(lines[i]))
    return raw.to_numpy(dtype=object)


def integers(path: Path, column: Column, lines: np.ndarray, what: str, *, negative: bool = False) -> np.ndarray:
    """Whole numbers in ASCII digits, parsed exactly (never through a float: ids above
    2^53 stay distinct), within the 64-bit range the tables store; negative ones only
    where ``negative``."""
    return _by_batch(column, lines, lambda joined, at: _integers(path, joined, at, what, negative))


def _integers(path: Path, joined: str, lines: np.ndarray, what: str, negative: bool) -> np.ndarray:
    plain = _decimals(joined, point=False, most=18)  # < 10^18: in range
    if plain is not None:
        return plain[0]
    stripped = pd.Series(joined.split(JOIN), dtype=object).str.strip()

    def refuse(bad: np.ndarray, reason: str) -> None:
        if bad.any():
            i = int(np.argmax(bad))
            raw = stripped.iloc[i]
            cut = raw if len(raw) <= 40 else raw[:40] + "..."
            raise InputError(path, f"missing {what}" if raw == "" else reason.format(raw=cut), int(lines[i]))

    # [0-9], not \d: \d also matches other scripts' digits, which int() would accept.
    whole = stripped.str.fullmatch(r"[+-]?[0-9]+").to_numpy(dtype=bool)
    refuse(~whole, f"{what} {{raw!r}} is not a whole number")
    digits = stripped.str.lstrip("+-").str.lstrip("0")
    length = digits.str.len().to_numpy()
    limit = np.where(stripped.str.startswith("-").to_numpy(dtype=bool), BIGINT_MIN_DIGITS, BIGINT_MAX)
    refuse(
        (length > 19) | ((length == 19) & (digits.to_numpy(dtype=str) > limit)),
        f"{what} {{raw}} is outside the 64-bit integer range",
    )
    values = stripped.to_numpy(dtype=object).astype(np.int64)
    if not negative:
        refuse(values < 0, f"{what} {{raw}} is negative")
    return values


def genres_from_flags(path: Path, flags: Sequence[Sequence[str]], lines: np.ndarray) -> np.ndarray:
    """u.item's 19 genre flag columns as ``|``-joined genre names (None for none)."""
    names = ml100k_genre_names(path)
    matrix = np.array([pd.Series(c, dtype=object).str.strip().to_numpy() for c in flags], dtype=object).T
    valid = np.isin(matrix, ["0", "1"])
    if not valid.all():
        row = int(np.argmax(~valid.all(axis=1)))
        raise InputError(path, "genre flags must be 0 or 1", int(lines[row]))
    named = np.where(matrix == "1", np.array([name + "|" for name in names], dtype=object), "")
    joined = pd.Series(named.sum(axis=1) if len(matrix) else [], dtype=object).str[:-1]
    return joined.where(joined != "", None).to_numpy(dtype=object)


def ml100k_genre_names(item_path: Path) -> tuple[str, ...]:
    """Genre names in flag order from u.genre beside u.item, else the published list."""
    genre_file = item_path.with_name("u.genre")
    if not genre_file.is_file():
        return ML100K_GENRES
    pairs = {}
    try:
        text = genre_file.read_bytes().decode("latin-1")
    except OSError as exc:
        raise InputError(genre_file, f"cannot read: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):  # 19 lines: no bulk path here
        if "|" in line:
            name, _, index = line.rpartition("|")
            if not re.fullmatch(r"[0-9]+", index.strip()) or int(index) >= len(ML100K_GENRES) or int(index) in pairs:
                raise InputError(
                    genre_file, f"expected name|index with a new index 0-18, found {shown(line, 80)}", number
                )
            pairs[int(index)] = name
    if len(pairs) != len(ML100K_GENRES):
        raise InputError(genre_file, f"expected {len(ML100K_GENRES)} genres, found {len(pairs)}")
    return tuple(pairs[i] for i in range(len(ML100K_GENRES)))

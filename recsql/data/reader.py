"""Reading a file's records: decoding, the checks on the text as a whole, and the one CSV
tokenizer, with each record's line in the file.

Tokenizing is Python's :mod:`csv` module's, in strict mode: it refuses what lenient
readers silently repair (``"ab"c``, which they read as ``abc``; a quoted field that never
closes), and quotes, escaped quotes and quoted line breaks follow the CSV rules.  One
tokenizer splits the records and their fields, so the field counts that are checked are
those of the fields that are imported.

Records are read in small chunks (:data:`CHUNK` records), each moved into the columns at
once, so few records are ever alive as Python lists; a :class:`Column` joins its fields
into one string per batch, so a large file costs about its size in memory, not a Python
object per field.  A record's line is the line it starts on: the reader's ``line_num``
gives the lines a chunk spans, and only a chunk that spans more lines than it has records
(a quoted line break) has its records' line breaks counted.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import chain, islice
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from recsql.data.formats import BOM_INSIDE_REASON, NUL_REASON, Layout, encoding
from recsql.errors import InputError

if TYPE_CHECKING:
    from _csv import Reader

CHUNK = 1000  # records tokenized at a time (few: their lists die young, which is cheap for the GC)
BATCH = 65_536  # fields a Column joins into one string
JOIN = "\x00"  # joins a Column's fields: no field holds one, as the file may not

_TEXT_AFTER_QUOTE = 'text after the closing quote of a field (write "ab""c" for ab"c)'
_UNCLOSED = 'a quoted field starts here and never ends (unbalanced ")'
_LONE_CR = "a carriage return (\\r) inside a line; lines must end in \\n or \\r\\n"


def decode(path: Path, data: bytes, encoding: str) -> str:
    """``data`` as text, refused with the line of the first byte that is not ``encoding``."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        name = encoding.removesuffix("-sig").upper()
        raise InputError(path, f"not valid {name} text (byte 0x{data[exc.start]:02x})", line) from None


def file_text(path: Path, data: bytes, layout: Layout, trailing: str = "\r\n\t ") -> str:
    """The file decoded (by its byte-order mark, else the layout's encoding) without the
    ``trailing`` characters at its end, and refused for what no line of it may hold."""
    text = decode(path, data, encoding(data, layout.encoding)).rstrip(trailing)
    if not text:
        raise InputError(path, "the file is empty")
    # A NUL is no text; a byte-order mark after the start is what joining files leaves.
    for char, reason in (("\x00", NUL_REASON), ("\ufeff", BOM_INSIDE_REASON)):
        where = text.find(char)
        if where >= 0:
            raise InputError(path, reason, text.count("\n", 0, where) + 1)
    # A forced format with a header must not take a row of data for it (and drop it).
    if layout.header is not None and re.match(r"[ \t]*[+-]?[0-9]", text):
        raise InputError(
            path, f"expected the header line {','.join(layout.header)}, found data (is this another --format?)", 1
        )
    # A carriage return that does not end a line: outside quotes the tokenizer would end
    # the line there, inside them PostgreSQL's COPY would (the bulk writer leaves it bare).
    if text.count("\r") != text.count("\r\n"):
        lone = re.search(r"\r(?!\n)", text)
        raise InputError(path, _LONE_CR, text.count("\n", 0, lone.start() if lone else 0) + 1)
    return text


class Column:
    """One column of a file's fields, kept compact: in batches of up to :data:`BATCH`
    fields, each batch joined by NULs into one string (with its number of fields), so a
    field costs its characters, not a Python object.  The checks work batch by batch."""

    def __init__(self) -> None:
        self.batches: list[str] = []
        self.sizes: list[int] = []
        self._open: list[str] = []

    def extend(self, fields: Iterable[str]) -> None:
        self._open.extend(fields)
        if len(self._open) >= BATCH:
            self.close()

    def close(self) -> None:
        """Join the fields added since the last batch into one."""
        if self._open:
            self.batches.append(JOIN.join(self._open))
            self.sizes.append(len(self._open))
            self._open = []

    def fields(self) -> list[str]:
        """Every field, as its own string (for small files, and messages)."""
        return list(chain.from_iterable(map(methodcaller("split", JOIN), self.batches)))


class Records:
    """A file's records, tokenized by the csv module: the first one can be looked at on
    its own (a header, or the line that sets a custom layout's field count), then the
    rest are read as columns."""

    def __init__(self, path: Path, text: str, layout: Layout) -> None:
        self.path = path
        self._text = text
        self._layout = layout
        self._reader = self._tokenizer(strict=True)
        self._pending: tuple[list[list[str]], np.ndarray] | None = None

    def _tokenizer(self, strict: bool) -> Reader:
        source = io.StringIO(self._text, newline="")
        if self._layout.quoted:
            return csv.reader(source, delimiter=self._layout.sep, quoting=csv.QUOTE_MINIMAL, strict=strict)
        return csv.reader(source, delimiter=self._layout.sep, quoting=csv.QUOTE_NONE, strict=strict)

    def first(self) -> list[str]:
        """The first record (the text is not empty: there is one); it stays to be read."""
        if self._pending is None:
            self._pending = self._chunk(1)
        return self._pending[0][0]

    def skip_first(self) -> None:
        self.first()
        self._pending = None

    def columns(self, fields: int, picks: Sequence[int], why: str = "") -> tuple[list[Column], np.ndarray]:
        """The fields at ``picks`` of every record left, column by column, and each
        record's line; every record must have ``fields`` fields (``why``: as what has)."""
        columns = [Column() for _ in picks]
        getters = [itemgetter(i) for i in picks]
        lines = []
        while True:
            rows, at = self._pending or self._chunk(CHUNK)
            self._pending = None
            if not rows:
                break
            counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
            bad = counts != fields
            if bad.any():
                i = int(np.argmax(bad))
                found = int(counts[i])
                self.refuse("empty line" if found == 0 else f"expected {fields} fields{why}, found {found}", at[i])
            for column, get in zip(columns, getters):
                column.extend(map(get, rows))
            lines.append(at)
        for column in columns:
            column.close()
        return columns, (np.concatenate(lines) if lines else np.empty(0, dtype=np.int64))

    def refuse(self, reason: str, line: int | np.integer) -> NoReturn:
        """Refuse the file for ``reason`` at ``line``; but a tokenizing error anywhere in
        the file comes first, as the file is not CSV there (so its field counts mean little)."""
        self._drain()
        raise InputError(self.path, reason, int(line))

    def _drain(self) -> None:
        try:
            deque(self._reader, maxlen=0)
        except csv.Error as exc:
            raise self._refusal(exc) from None

    def _chunk(self, size: int) -> tuple[list[list[str]], np.ndarray]:
        """The next ``size`` records (fewer at the end) and the line each starts on."""
        before = self._reader.line_num
        try:
            rows = list(islice(self._reader, size))
        except csv.Error as exc:
            raise self._refusal(exc) from None
        lines = np.arange(before + 1, before + 1 + len(rows), dtype=np.int64)
        if self._reader.line_num - before != len(rows):  # quoted line breaks: count each record's
            breaks = np.fromiter(map(methodcaller("count", "\n"), map("".join, rows)), np.int64, len(rows))
            lines[1:] += np.cumsum(breaks)[:-1]
        return rows, lines

    def _refusal(self, exc: csv.Error) -> InputError:
        """The csv module's error as a message, at its line."""
        message, line = str(exc), self._reader.line_num
        if message == "unexpected end of data":  # only ever inside quotes, at the end of the text
            return InputError(self.path, _UNCLOSED, self._unclosed_line())
        if message.endswith("expected after '\"'"):
            return InputError(self.path, _TEXT_AFTER_QUOTE, line)
        if message.startswith("field larger than field limit"):
            return InputError(self.path, f"a field longer than {csv.field_size_limit():,} characters", line)
        return InputError(self.path, f"not readable as CSV ({message})", line)

    def _unclosed_line(self) -> int:
        """The line of the quote that opens the field left open at the end: a lenient
        reading (the same records, as the strict one found no other fault) ends with
        that field, from its quote to the end of the text."""
        try:
            last = deque(self._tokenizer(strict=False), maxlen=1)
        except csv.Error:
            return self._reader.line_num
        return self._text.count("\n") + 1 - (last[0][-1].count("\n") if last and last[0] else 0)


def read_table(path: Path, data: bytes, layout: Layout) -> tuple[list[Column], np.ndarray]:
    """A built-in format's data rows: all their fields, column by column, and each row's
    line in the file."""
    records = Records(path, file_text(path, data, layout), layout)
    if layout.header is not None:
        # The header is not counted: a header with more or fewer names than the rows have
        # fields cannot shift or drop a column, as the columns are the format's.
        records.skip_first()
    columns, lines = records.columns(layout.fields, range(layout.fields))
    if len(lines) == 0:
        raise InputError(path, "the file has a header but no data rows")
    return columns, lines

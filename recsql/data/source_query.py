"""A source query, checked by a SQL parser and rebuilt from what was checked.

A source mapping may give its ratings as a query.  A READ ONLY transaction does not stop
everything a query can do: functions with effects outside the transaction exist on
PostgreSQL (``lo_import`` reads a server file, ``dblink`` writes elsewhere, an advisory
lock outlives a rollback), and wrapping text in parentheses can be escaped by text that
closes them.  So :func:`checked_select` parses the query (sqlglot, in the database's own
dialect) and accepts only:

* exactly one statement, a SELECT (``WITH``, ``UNION`` and subqueries included) with no
  INSERT, UPDATE, DELETE, MERGE, ``SELECT ... INTO`` or row locks anywhere in it;
* calls of the functions in :data:`FUNCTIONS` (aggregates, casts, arithmetic, text and
  time functions without side effects) and nothing else: any other function is refused
  by name, with the way out (a view of the application's, mapped as ``table``);
* outermost result columns that include the mapped ones (or ``*``).

What runs is the SQL regenerated from the parsed tree, without comments, so the database
executes exactly the statement that was checked; it runs in a read-only transaction that
is rolled back, with a statement timeout (:func:`recsql.data.source.reading`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from recsql.errors import InvalidParameter

# sqlglot's dialect names for SQLAlchemy's.
DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite"}

# Functions without effects outside the query: aggregates, window functions, casts,
# conditionals, arithmetic, text and date/time functions (as sqlglot knows them).
FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.And,
    exp.Or,
    exp.Xor,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.TryCast,
    exp.Coalesce,
    exp.Nullif,
    exp.Greatest,
    exp.Least,
    exp.Exists,
    exp.Count,
    exp.Sum,
    exp.Avg,
    exp.Min,
    exp.Max,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.Variance,
    exp.VariancePop,
    exp.ArrayAgg,
    exp.RowNumber,
    exp.Rank,
    exp.DenseRank,
    exp.Lag,
    exp.Lead,
    exp.FirstValue,
    exp.LastValue,
    exp.First,
    exp.Last,
    exp.Abs,
    exp.Ceil,
    exp.Floor,
    exp.Round,
    exp.Sign,
    exp.Sqrt,
    exp.Exp,
    exp.Ln,
    exp.Log,
    exp.Pow,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Length,
    exp.Substring,
    exp.Concat,
    exp.ConcatWs,
    exp.Replace,
    exp.Left,
    exp.Right,
    exp.StrPosition,
    exp.Initcap,
    exp.CurrentDate,
    exp.CurrentTimestamp,
    exp.CurrentTime,
    exp.Extract,
    exp.DateTrunc,
    exp.TimestampTrunc,
    exp.DateAdd,
    exp.DateSub,
    exp.DateDiff,
    exp.UnixToTime,
    exp.TimeToUnix,
    exp.StrToTime,
    exp.TimeToStr,
    exp.TsOrDsToTimestamp,
    exp.TsOrDsToDate,
    exp.Date,
    exp.Timestamp,
)
# Functions sqlglot does not model, by name: pure ones of PostgreSQL and SQLite.
NAMED_FUNCTIONS = frozenset(
    {
        "date_part",
        "to_timestamp",
        "to_char",
        "to_date",
        "to_number",
        "ifnull",
        "iif",
        "instr",
        "char_length",
        "octet_length",
        "btrim",
        "ltrim",
        "rtrim",
        "julianday",
        "unixepoch",
        "datetime",
        "date",
        "time",
        "strftime",
        "nullif",
        "mod",
        "trunc",
        "div",
    }
)
# Statements and clauses that write, or lock rows, wherever they appear.
FORBIDDEN: tuple[type[exp.Expression], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Into,
    exp.Lock,
    exp.Create,
    exp.Drop,
    exp.Command,
)
VIEW_HINT = (
    'put the query in a view of the application\'s (CREATE VIEW ... AS SELECT ...) and map it with table = "that_view"'
)


def checked_select(query: str, dialect: str | None, columns: Iterable[str] = ()) -> str:
    """The query, parsed in ``dialect`` (SQLAlchemy's name; None: whichever of
    PostgreSQL's and SQLite's accepts it), checked, and regenerated without comments;
    :class:`InvalidParameter` saying what is refused otherwise.  Parsed once per query
    (serving builds a source's SQL on every explanation)."""
    return _checked_once(query, dialect, tuple(columns))


@functools.lru_cache(maxsize=64)
def _checked_once(query: str, dialect: str | None, columns: tuple[str, ...]) -> str:
    if dialect is not None:
        return _checked(query, DIALECTS.get(dialect, dialect), columns)
    refusal: InvalidParameter | None = None
    for name in DIALECTS.values():
        try:
            return _checked(query, name, columns)
        except InvalidParameter as exc:
            refusal = refusal or exc
    assert refusal is not None
    raise refusal


def _checked(query: str, dialect: str, columns: tuple[str, ...]) -> str:
    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        reason = str(exc).splitlines()[0]
        raise InvalidParameter(f"a source query must be one SELECT statement; it does not parse: {reason}") from None
    if len(statements) != 1:
        raise InvalidParameter("a source query must be a single statement (one SELECT)")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise InvalidParameter("a source query must be a SELECT (or WITH ... SELECT)")
    for node in tree.walk():
        if isinstance(node, FORBIDDEN):
            raise InvalidParameter(
                f"a source query must only read: it has {node.key.upper()} (writes and row locks are refused)"
            )
        if isinstance(node, exp.Func) and not _allowed(node):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            raise InvalidParameter(
                f"a source query may not call {name.lower()}(): recsql runs only functions "
                f"without side effects there; {VIEW_HINT}"
            )
    selected = {name.lower() for name in tree.named_selects}
    if columns and not any(isinstance(c, exp.Star) or c.is_star for c in tree.selects):
        missing = [c for c in columns if c.lower() not in selected]
        if missing:
            raise InvalidParameter(
                f"the source query's result has no column {', '.join(missing)} (its columns: "
                f"{', '.join(tree.named_selects) or 'none named'}); name them with AS"
            )
    return tree.sql(dialect=dialect, comments=False)


def _allowed(node: exp.Func) -> bool:
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in NAMED_FUNCTIONS
    return isinstance(node, FUNCTIONS)

#!/usr/bin/env python3
"""Benchmark: readers query the views while retrains run back to back, and never see half a model.

    python scripts/bench_load.py                        # a temporary SQLite file, 8 reader processes
    python scripts/bench_load.py --postgres             # a new database on 127.0.0.1:5432, 8 reader threads
    python scripts/bench_load.py --postgres postgresql://postgres@db:5432/postgres --readers 16
    python scripts/bench_load.py --synthetic --samples 5 --retrains 2 --min-queries 2000 --json -

Where the data goes (nothing else is touched):

- by default, a temporary SQLite file (WAL mode, as recsql sets it), deleted afterwards;
- ``--postgres [SERVER]`` creates ``recsql_load_<random>`` on that server (default
  ``postgresql://postgres@127.0.0.1:5432/test``, used only to CREATE and DROP it) and
  drops it afterwards; a ``--database-url`` naming a PostgreSQL server without a
  database (``postgresql://postgres@host:5432/``) does the same;
- any other ``--database-url`` must be an empty database: the script fills it and leaves it.

The catalogue is MovieLens 100K (``u.data``, ``u.item``) from ``$RECSQL_SHARED_DATA`` or
``../shared/data``, read in place; without it (or with ``--synthetic``) recsql's own
generator makes one of the same size (``--ratings/--users/--movies``), seed 0.

Model 1 is trained (seed 0) before any reader starts, and the ids to ask about are drawn
(seed 0) from its rows, so each has a list.  Then ``--readers`` readers (processes on
SQLite, threads on PostgreSQL, ``--mode`` to choose) each open one autocommit connection
and query ``similar_movies`` and ``recommended_movies`` in turn with plain SQL, as fast as
they can, while the main process runs ``--retrains`` retrains (``recsql.train``; retrain i
uses seed i, so successive models' lists differ and a mixed answer would show).  Readers
stop once the retrains are done and ``--min-queries`` have been asked in all.

Consistency.  The views have no ``model_id`` column, so each answer is joined to the
models by its content: right after each train, while the main process is the only writer
and the new model is active, it reads every chosen id's list through the same SQL (that
model's reference).  An answer is consistent when it equals, row for row, the list of
that id in some model of the run; the join of answers with the references on (view, id,
fingerprint of the rows) names that model.  Anything else is inconsistent: rows of two
models (two active at once), a partial list, an empty answer where every model had rows.
Exit status 1 when any query raised or any answer is inconsistent.

The readers never wait for anything but the database, so on a small machine they take
most of the CPU and each retrain runs several times slower than alone; that is the
point (retraining under full read load), not a fault of the retrain.

Prints one markdown table and whether each target (0 errors and 0 inconsistent answers
over >= 20,000 queries, p99 <= 10 ms, >= 2,000 queries/s while retraining) was met;
``--json PATH`` (``-`` for stdout) writes the same figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import queue
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

import recsql
from recsql.db.engine import make_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import scratch_postgres

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECSQL_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"

# The two questions an application asks, as the README asks them; {p} is the driver's placeholder.
KINDS = ("similar", "recommend")
QUERIES = (
    "SELECT rank, similar_movie_id, similar_title, score FROM similar_movies WHERE movie_id = {p} ORDER BY rank",
    "SELECT rank, movie_id, title, predicted_rating, score FROM recommended_movies WHERE user_id = {p} ORDER BY rank",
)
# Where the ids with a list in a given model are (model 1's, to choose the ids asked about).
LISTED_IDS = (
    "SELECT DISTINCT movie_id FROM movie_similarities WHERE model_id = :m ORDER BY movie_id",
    "SELECT DISTINCT user_id FROM user_recommendations WHERE model_id = :m ORDER BY user_id",
)
TARGETS = {"min_queries": 20_000, "p99_ms": 10.0, "qps_retraining": 2_000.0}
CHUNK = 64  # queries between two looks at the stop flag


def fingerprint(rows: Sequence[tuple]) -> int:
    """64 bits that stand for an answer.  ``hash()`` would not do: it salts strings (the
    titles) differently in every process; the rows' repr is the same wherever the same
    driver read the same rows, and so is its digest."""
    digest = hashlib.blake2b(repr(rows).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def judge(answers: pd.DataFrame, references: pd.DataFrame) -> pd.Series:
    """The model each answer came from, or NaN when no model's list is that answer.

    ``answers``: columns kind, key, fingerprint.  ``references``: kind, key,
    fingerprint, model_id, one row per model and id.  A join on all three: an answer
    matches a model only if it has exactly that model's rows for that id, so rows of
    two models, a partial list, or an empty answer where every model had rows match
    none.  Where two models have the same list, the answer is given to the newer one.
    """
    keys = ["kind", "key", "fingerprint"]
    newest = references.groupby(keys, as_index=False)["model_id"].max()
    return answers[keys].merge(newest, how="left", on=keys)["model_id"]


class Asker:
    """One reader's connection, as an application holds it: the driver's own connection
    in autocommit (each SELECT its own snapshot, no transaction left open between them),
    on an engine from recsql (so SQLite gets its WAL pragmas)."""

    def __init__(self, url: str):
        self.url = url
        self._open()

    def _open(self) -> None:
        self.engine = make_engine(self.url)
        self.pooled = self.engine.raw_connection()
        driver = self.pooled.driver_connection
        assert driver is not None
        if self.engine.dialect.name == "postgresql":
            driver.autocommit = True
        mark = "%s" if self.engine.dialect.name == "postgresql" else "?"
        self.sql = [q.format(p=mark) for q in QUERIES]
        self.cursor = driver.cursor()

    def __call__(self, kind: int, key: int) -> list[tuple]:
        self.cursor.execute(self.sql[kind], (key,))
        return self.cursor.fetchall()

    def close(self) -> None:
        try:
            self.pooled.close()
        finally:
            self.engine.dispose()

    def reopen(self, errors: list[str]) -> None:
        """A fresh connection after a failed query (the old one may be broken); if even
        that fails, the next query fails too and tells."""
        try:
            self.close()
            self._open()
        except Exception as exc:  # noqa: BLE001 - counted like a failed query
            errors.append(f"reconnect: {type(exc).__name__}: {exc}")


def read_until_stopped(
    url: str, index: int, ids: list[np.ndarray], quota: int, start: Any, stop: Any, out: Any
) -> None:
    """One reader: ask as fast as it can until ``stop`` is set and it has asked ``quota``
    times, timing each query, then put its log on ``out``.  Runs as a thread or as a
    spawned process; any failure outside a query is reported on ``out`` too, so the
    main process never waits for a reader that died."""
    try:
        asker = Asker(url)
        start.wait()
        log, errors = _ask_loop(asker, index, ids, quota, stop)
        asker.close()
        out.put({"index": index, "log": log, "errors": errors})
    except BaseException as exc:
        start.abort()
        out.put({"index": index, "failed": f"{type(exc).__name__}: {exc}"})
        raise


def _ask_loop(
    asker: Asker, index: int, ids: list[np.ndarray], quota: int, stop: Any
) -> tuple[dict[str, array], list[str]]:
    """The hot loop: per query one draw, one execute, one fetch, one digest, six appends."""
    rng = np.random.default_rng([0, index])
    log = {
        "kind": array("b"),
        "key": array("q"),
        "fingerprint": array("q"),
        "rows": array("i"),
        "started": array("d"),
        "ms": array("d"),
    }
    errors: list[str] = []
    asked = 0
    while asked < quota or not stop.is_set():
        picks = [rng.integers(len(keys), size=CHUNK) for keys in ids]
        for n in range(CHUNK):
            kind = (asked + n) % 2
            key = int(ids[kind][picks[kind][n]])
            began = time.perf_counter()
            try:
                rows = asker(kind, key)
            except Exception as exc:  # noqa: BLE001 - every failure is an error to count, not a crash
                took, rows = time.perf_counter() - began, None
                errors.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
                asker.reopen(errors)
            else:
                took = time.perf_counter() - began
            log["kind"].append(kind)
            log["key"].append(key)
            log["fingerprint"].append(fingerprint(rows) if rows is not None else 0)
            log["rows"].append(len(rows) if rows is not None else -1)
            log["started"].append(began)
            log["ms"].append(took * 1000)
        asked += CHUNK
    return log, errors


def reference(asker: Asker, engine: Engine, model_id: int, ids: list[np.ndarray]) -> pd.DataFrame:
    """Every chosen id's list in ``model_id``, read through the readers' own SQL while it is
    the active model and nothing else writes (the main process is the only writer)."""
    with engine.connect() as conn:
        active = conn.execute(text("SELECT model_id FROM active_model")).scalar()
    if active != model_id:
        raise SystemExit(f"model {model_id} was trained but model {active} is active")
    frames = []
    for kind, keys in enumerate(ids):
        answers = [asker(kind, int(key)) for key in keys]
        frames.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "key": keys,
                    "model_id": model_id,
                    "fingerprint": [fingerprint(rows) for rows in answers],
                    "rows": [len(rows) for rows in answers],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def choose_ids(engine: Engine, model_id: int, per_kind: int) -> list[np.ndarray]:
    """Up to ``per_kind`` movies and users (seed 0) that have a list in ``model_id``."""
    rng = np.random.default_rng(0)
    chosen = []
    with engine.connect() as conn:
        for sql in LISTED_IDS:
            listed = np.array(conn.execute(text(sql), {"m": model_id}).scalars().all(), dtype=np.int64)
            chosen.append(np.sort(rng.choice(listed, min(per_kind, len(listed)), replace=False)))
    return chosen


# ---------------------------------------------------------------- database and catalogue


def _server_url(url: str) -> str | None:
    """The server's libpq URL when ``url`` names a PostgreSQL server but no database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return None


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """The URL to load and read: a temporary SQLite file, a PostgreSQL database of our own
    (created here, dropped afterwards), or the caller's database as given."""
    server = args.postgres or (_server_url(args.database_url) if args.database_url else None)
    if server:
        with scratch_postgres(server, "recsql_load") as url:
            yield url
    elif args.database_url:
        yield args.database_url
    else:
        with tempfile.TemporaryDirectory(prefix="recsql-load-") as folder:
            yield f"sqlite:///{folder}/load.db"


def load_catalogue(engine: Engine, args: argparse.Namespace) -> str:
    """Fill an empty database with MovieLens 100K, else a synthetic catalogue; says which."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT COUNT(*) FROM ratings")).scalar():
            raise SystemExit("the database already holds ratings; give an empty one (or none: a temporary file)")
    movielens = SHARED_DATA / "ml-100k"
    if not args.synthetic and (movielens / "u.data").is_file():
        recsql.import_movies(engine, movielens / "u.item")
        imported = recsql.import_ratings(engine, movielens / "u.data")
        return f"MovieLens 100K ({imported.rows:,} ratings)"
    made = recsql.generate(engine, ratings=args.ratings, users=args.users, movies=args.movies, seed=0)
    return f"synthetic ({made.ratings:,} ratings, {made.users:,} users, {made.movies:,} movies, seed 0)"


def train_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The training flags given (recsql.train's defaults for the rest)."""
    names = ("solver", "features", "samples", "max_iterations", "similar_k", "recommend_n", "keep")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


# ---------------------------------------------------------------- the run


def start_readers(url: str, args: argparse.Namespace, ids: list[np.ndarray]) -> tuple[list, Any, Any, Any]:
    """Readers as threads or spawned processes (fresh interpreters: no forked connections
    or BLAS threads), each waiting on a barrier the main process passes last."""
    quota = -(-args.min_queries // args.readers)
    if args.mode == "threads":
        start: Any = threading.Barrier(args.readers + 1)
        stop: Any = threading.Event()
        out: Any = queue.Queue()
        workers: list = [
            threading.Thread(target=read_until_stopped, daemon=True, args=(url, i, ids, quota, start, stop, out))
            for i in range(args.readers)
        ]
    else:
        context = multiprocessing.get_context("spawn")
        start, stop, out = context.Barrier(args.readers + 1), context.Event(), context.Queue()
        workers = [
            context.Process(target=read_until_stopped, daemon=True, args=(url, i, ids, quota, start, stop, out))
            for i in range(args.readers)
        ]
    for worker in workers:
        worker.start()
    return workers, start, stop, out


def collect(workers: list, out: Any, count: int) -> list[dict]:
    """Every reader's report (taken off the queue before joining: a process does not exit
    while its report is still in the pipe)."""
    reports = [out.get(timeout=600) for _ in range(count)]
    for worker in workers:
        worker.join(timeout=60)
    failed = [r["failed"] for r in reports if "failed" in r]
    if failed:
        raise SystemExit(f"{len(failed)} reader(s) failed: {failed[0]}")
    return reports


def run_load(engine: Engine, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Model 1, the ids, the readers, the retrains, then every reader's log; the figures."""
    kwargs = train_kwargs(args)
    began = time.perf_counter()
    first = recsql.train(engine, seed=0, **kwargs)
    first_seconds = time.perf_counter() - began
    ids = choose_ids(engine, first.model_id, args.ids)
    asker = Asker(url)
    references = [reference(asker, engine, first.model_id, ids)]
    workers, start, stop, out = start_readers(url, args, ids)
    try:
        start.wait(timeout=300)
    except threading.BrokenBarrierError:
        stop.set()
        collect(workers, out, args.readers)
        raise
    window_start = time.perf_counter()
    seconds = []
    try:
        for seed in range(1, args.retrains + 1):
            began = time.perf_counter()
            model_id = recsql.train(engine, seed=seed, **kwargs).model_id
            seconds.append(time.perf_counter() - began)
            references.append(reference(asker, engine, model_id, ids))
    finally:
        window_end = time.perf_counter()
        stop.set()
        reports = collect(workers, out, args.readers)
        asker.close()
    figures = summarize(reports, pd.concat(references, ignore_index=True), window_start, window_end)
    figures.update(
        first_train_seconds=round(first_seconds, 2),
        retrain_seconds=[round(s, 2) for s in seconds],
        ids={k: len(v) for k, v in zip(KINDS, ids)},
    )
    return figures


def summarize(reports: list[dict], references: pd.DataFrame, window_start: float, window_end: float) -> dict[str, Any]:
    """Counts, rates, latency percentiles and the consistency verdict over all readers' logs."""
    log = pd.concat(
        [pd.DataFrame({k: np.frombuffer(v, dtype=v.typecode) for k, v in r["log"].items()}) for r in reports],
        ignore_index=True,
    )
    errors = [e for r in reports for e in r["errors"]]
    answered = log[log["rows"] >= 0]
    model = judge(answered, references)
    inconsistent = model.isna().to_numpy()
    during = log["started"].between(window_start, window_end).to_numpy()
    window = window_end - window_start
    return {
        "queries": len(log),
        "queries_while_retraining": int(during.sum()),
        "retraining_seconds": round(window, 2),
        "qps_retraining": round(float(during.sum()) / window, 1) if window > 0 else None,
        "p50_ms": round(float(np.percentile(log["ms"], 50)), 3),
        "p99_ms": round(float(np.percentile(log["ms"], 99)), 3),
        "p99_ms_retraining": round(float(np.percentile(log["ms"][during], 99)), 3) if during.any() else None,
        "max_ms": round(float(log["ms"].max()), 3),
        "over_10ms": int((log["ms"] > 10).sum()),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "inconsistent": int(inconsistent.sum()),
        "inconsistent_empty": int((inconsistent & (answered["rows"].to_numpy() == 0)).sum()),
        "answers_per_model": {str(int(m)): int(n) for m, n in model.value_counts().sort_index().items()},
        "ids_empty_in_some_model": int(
            references.loc[references["rows"] == 0, ["kind", "key"]].drop_duplicates().shape[0]
        ),
    }


# ---------------------------------------------------------------- report


def targets(figures: dict[str, Any]) -> dict[str, bool]:
    """Which of the issue's targets this run met."""
    return {
        name: bool(met)
        for name, met in {
            "0 errors, 0 inconsistent over >= 20,000 queries": figures["errors"] == 0
            and figures["inconsistent"] == 0
            and figures["queries"] >= TARGETS["min_queries"],
            "p99 <= 10 ms": figures["p99_ms"] <= TARGETS["p99_ms"],
            ">= 2,000 queries/s while retraining": (figures["qps_retraining"] or 0) >= TARGETS["qps_retraining"],
        }.items()
    }


def print_report(figures: dict[str, Any]) -> None:
    f = figures
    print(
        f"{f['database']}, {f['readers']} reader {f['mode']}, {f['catalogue']}; "
        f"{len(f['retrain_seconds'])} retrains {f['train']} of {', '.join(map(str, f['retrain_seconds']))} s "
        f"(model 1: {f['first_train_seconds']} s); ids asked: {f['ids']['similar']:,} movies, "
        f"{f['ids']['recommend']:,} users; answers per model {f['answers_per_model']}"
    )
    print()
    print(
        "| database | readers | queries | q/s while retraining | p50 ms | p99 ms | p99 ms while retraining "
        "| errors | inconsistent |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    while_retraining = f"{f['p99_ms_retraining']:.2f}" if f["p99_ms_retraining"] is not None else "-"
    print(
        f"| {f['database']} | {f['readers']} {f['mode']} | {f['queries']:,} | {f['qps_retraining'] or 0:,.0f} "
        f"| {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {while_retraining} | {f['errors']} | {f['inconsistent']} |"
    )
    print()
    for name, met in f["targets"].items():
        print(f"- {name}: {'met' if met else 'NOT met'}")
    for sample in f["error_samples"]:
        print(f"error: {sample}", file=sys.stderr)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="an empty database to fill (default: a temporary SQLite file)")
    where.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_SERVER,
        metavar="SERVER",
        help=f"create (and drop) a database on this server (default {DEFAULT_SERVER})",
    )
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument(
        "--mode", choices=("threads", "processes"), help="default: processes on SQLite, threads on PostgreSQL"
    )
    parser.add_argument("--retrains", type=int, default=3)
    parser.add_argument("--min-queries", type=int, default=20_000, help="in all readers together")
    parser.add_argument("--ids", type=int, default=1000, help="movies and users to ask about, each")
    parser.add_argument("--synthetic", action="store_true", help="a synthetic catalogue even if MovieLens is there")
    parser.add_argument("--ratings", type=int, default=100_000, help="synthetic catalogue size")
    parser.add_argument("--users", type=int, default=943)
    parser.add_argument("--movies", type=int, default=1682)
    training = parser.add_argument_group("training (recsql train's defaults unless given)")
    training.add_argument("--solver")
    training.add_argument("--features", type=int)
    training.add_argument("--samples", type=int)
    training.add_argument("--max-iterations", type=int)
    training.add_argument("--similar-k", type=int)
    training.add_argument("--recommend-n", type=int)
    training.add_argument("--keep", type=int, help="complete models kept after each retrain")
    parser.add_argument("--json", help="write the figures as JSON to this path ('-': stdout)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 1 when any query failed or any answer was inconsistent."""
    args = parse(argv)
    with database(args) as url:
        engine = recsql.connect(url)
        try:
            dialect = engine.dialect.name
            args.mode = args.mode or ("processes" if dialect == "sqlite" else "threads")
            catalogue = load_catalogue(engine, args)
            figures = run_load(engine, url, args)
        finally:
            engine.dispose()
    figures.update(
        database=dialect,
        mode=args.mode,
        readers=args.readers,
        catalogue=catalogue,
        train=train_kwargs(args) or "defaults",
    )
    figures["targets"] = targets(figures)
    print_report(figures)
    if args.json:
        payload = json.dumps(figures, indent=2)
        if args.json == "-":
            print(payload)
        else:
            Path(args.json).write_text(payload + "\n")
    return 1 if figures["errors"] or figures["inconsistent"] else 0


if __name__ == "__main__":
    sys.exit(main())

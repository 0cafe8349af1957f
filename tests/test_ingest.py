"""Import: every supported format, and bad input that names file, line and reason and
imports nothing."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, inspect, select, text

import recsql
from recsql.data.files import read_movies_file, read_ratings_file
from recsql.db.catalogue import stored_scale, upsert_movies
from recsql.db.tables import Movie, Rating
from recsql.errors import InputError, InvalidParameter


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _ratings(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            select(Rating.user_id, Rating.movie_id, Rating.value, Rating.rated_at).order_by(Rating.id)
        ).all()


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_tutorial_ratings_any_line_ending(tmp_path, newline, final_newline):
    text_ = newline.join(["user_id,movie_id,value", "1,2,5", "1,3,4", "2,2,1"])
    path = _write(tmp_path, "r.csv", text_ + (newline if final_newline else ""))
    frame = read_ratings_file(path)
    assert frame.attrs["format"] == "tutorial"
    assert frame[["user_id", "movie_id", "value"]].values.tolist() == [[1, 2, 5], [1, 3, 4], [2, 2, 1]]
    assert "rated_at" not in frame


def test_movielens_formats(tmp_path):
    latest = _write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n")
    frame = read_ratings_file(latest)
    assert frame.attrs["format"] == "movielens"
    assert frame.value.tolist() == [4.0, 3.5] and frame.rated_at.tolist() == [964982703, 964981247]
    udata = _write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    frame = read_ratings_file(udata)
    assert frame.attrs["format"] == "movielens-100k"
    assert frame.user_id.tolist() == [196, 186]
    movies = _write(
        tmp_path,
        "movies.csv",
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
        '11,"American President, The (1995)",Comedy|Drama|Romance\n',
    )
    frame = read_movies_file(movies)
    assert frame.title.tolist() == ["Toy Story (1995)", "American President, The (1995)"]
    assert frame.genres.tolist() == ["Adventure|Animation", "Comedy|Drama|Romance"]
    flags = "|".join(["0"] * 19)
    item = ("1|Misérables, Les (1995)|01-Jan-1995||http://x|" + flags[:-1] + "1\n").encode("latin-1")
    frame = read_movies_file(_write(tmp_path, "u.item", item))
    assert frame.attrs["format"] == "movielens-100k"
    assert frame.title.tolist() == ["Misérables, Les (1995)"] and frame.genres.tolist() == ["Western"]


def test_shared_files_parse(seed_data, ml100k):
    full = read_ratings_file(seed_data / "movie_ratings_data_set.csv")
    assert len(full) == 680 and full.value.value_counts().to_dict() == {5: 341, 4: 183, 3: 79, 2: 45, 1: 32}
    movies = read_movies_file(seed_data / "movies.csv")
    assert len(movies) == 34 and "crime drama, western" in movies.genres.tolist()
    items = read_movies_file(ml100k / "u.item")
    assert len(items) == 1682
    assert items.title[items.movie_id == 267].item() == "unknown"
    assert sum("é" in t for t in items.title) >= 1
    assert items.genres[items.movie_id == 1].item() == "Animation|Children's|Comedy"
    data = read_ratings_file(ml100k / "u.data")
    assert len(data) == 100_000 and data.user_id.nunique() == 943 and data.movie_id.nunique() == 1682


def test_import_and_duplicates_are_kept(engine, run, tmp_path):
    path = _write(tmp_path, "r.csv", "user_id,movie_id,value\n1,2,5\n1,2,3\n")
    assert "imported 2 ratings" in run("import", "ratings", path).output
    assert [r[:3] for r in _ratings(engine)] == [(1, 2, 5.0), (1, 2, 3.0)]
    run("import", "ratings", path, "--replace")
    assert len(_ratings(engine)) == 2


def test_movies_upsert(engine, run, tmp_path):
    run("import", "movies", _write(tmp_path, "m.csv", 'movie_id,title,genre\n1,A,x\n2,B,"y, z"\n'))
    run("import", "movies", _write(tmp_path, "m2.csv", "movie_id,title,genre\n2,B2,\n3,C,w\n"))
    with engine.connect() as conn:
        rows = conn.execute(select(Movie.movie_id, Movie.title, Movie.genres).order_by(Movie.movie_id)).all()
    assert rows == [(1, "A", "x"), (2, "B2", None), (3, "C", "w")]


BAD_RATINGS = [
    ("user_id,movie_id,value\n1,2,5\n1,3,abc\n", 3, "rating 'abc' is not a number"),
    ("user_id,movie_id,value\n1,2,5\n1,3,\n", 3, "missing rating"),
    ("user_id,movie_id,value\n1,2,5\n1,3\n", 3, "expected 3 fields, found 2"),
    ("user_id,movie_id,value\n1,2,5\n1,3,4,9\n", 3, "expected 3 fields, found 4"),
    ("user_id,movie_id,value\r\n1,2,5\r\n\r\n2,3,4", 3, "empty line"),
    ("user_id,movie_id,value\n1.5,2,5\n", 2, "user id '1.5' is not a whole number"),
    ("user_id,movie_id,value\n1,2,5\n1e3,2,5\n", 3, "user id '1e3' is not a whole number"),
    ("user_id,movie_id,value\n1,-4,5\n", 2, "movie id -4 is negative"),
    (
        "user_id,movie_id,value\n9223372036854775808,2,5\n",
        2,
        "user id 9223372036854775808 is outside the 64-bit integer range",
    ),
    ("user_id,movie_id,value\n1,123456789012345678901,5\n", 2, "is outside the 64-bit integer range"),
    ("user_id,movie_id,value\n1,2,nan\n", 2, "rating 'nan' is not a number"),
    (b"user_id,movie_id,value\n1,2,5\n\xff\xfe,3,4\n", 3, "not valid UTF-8"),
    ("", None, "the file is empty"),
    ("user_id,movie_id,value\n", None, "no data rows"),
    ("who,what\n1,2\n", 1, "cannot tell the ratings format"),
]


@pytest.mark.parametrize("content,line,reason", BAD_RATINGS)
def test_bad_ratings_import_nothing(engine, run, tmp_path, content, line, reason):
    good = _write(tmp_path, "good.csv", "user_id,movie_id,value\n7,8,4\n")
    run("import", "ratings", good)
    before = _ratings(engine)
    bad = _write(tmp_path, "bad.csv", content)
    result = run("import", "ratings", bad, ok=False)
    where = f"{bad}, line {line}:" if line else f"{bad}:"
    assert where in result.output and reason in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _ratings(engine) == before


def test_bad_file_with_replace_keeps_old_ratings(engine, run, tmp_path):
    run("import", "ratings", _write(tmp_path, "good.csv", "user_id,movie_id,value\n7,8,4\n"))
    run("import", "ratings", _write(tmp_path, "bad.csv", "user_id,movie_id,value\n1,x,4\n"), "--replace", ok=False)
    assert [r[:3] for r in _ratings(engine)] == [(7, 8, 4.0)]


def test_missing_file_and_bad_movies(engine, run, tmp_path):
    assert "no such file" in run("import", "ratings", tmp_path / "nope.csv", ok=False).output
    bad = _write(tmp_path, "m.csv", "movie_id,title,genre\n1,A,x\n1,B,y\n")
    assert f"{bad}, line 3: movie id 1 appears twice" in run("import", "movies", bad, ok=False).output
    bad = _write(tmp_path, "m2.csv", "movie_id,title,genre\n1,,x\n")
    assert "line 2: missing title" in run("import", "movies", bad, ok=False).output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Movie)).scalar() == 0


def test_forced_format(tmp_path):
    path = _write(tmp_path, "r.tsv", "1\t2\t3\t4\n")
    assert read_ratings_file(path, format="movielens-100k").rated_at.tolist() == [4]


def test_hundred_thousand_ratings_import(engine, run, ml100k):
    run("import", "ratings", ml100k / "u.data")
    with engine.connect() as conn:
        count, total = conn.execute(text("SELECT COUNT(*), SUM(value) FROM ratings")).one()
    expected = 1 * 6110 + 2 * 11370 + 3 * 27145 + 4 * 34174 + 5 * 21201
    assert count == 100_000 and total == expected
    assert np.isclose(total / count, expected / 100_000)


def test_ids_are_exact_64_bit_integers(engine, tmp_path):
    """Ids above 2^53 stay distinct (no float round trip); the largest BIGINT is accepted."""
    import recsql

    big = ["1541815603606036480", "1541815603606036481", "9223372036854775807"]
    path = _write(tmp_path, "big.csv", "user_id,movie_id,value\n" + "\n".join(f"{u},{m},4" for u in big for m in big))
    recsql.import_ratings(engine, path)
    with engine.connect() as conn:
        users = sorted(set(conn.execute(select(Rating.user_id)).scalars()))
    assert users == sorted(int(u) for u in big)
    frame = read_ratings_file(_write(tmp_path, "t.csv", "userId,movieId,rating,timestamp\n1,2,4,-86400\n"))
    assert frame.rated_at.tolist() == [-86400]  # a rating from 1969 is still a time


def test_an_interrupted_first_import_leaves_the_table_usable(engine, tmp_path, monkeypatch):
    """A load into the empty table drops its index first; interrupted (Ctrl-C) mid-insert,
    the drop rolls back with the rows, and later imports work."""
    import recsql
    from recsql.db import catalogue

    path = _write(tmp_path, "r.csv", "user_id,movie_id,value\n1,2,5\n2,3,4\n")

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(catalogue, "insert_columns", interrupted)
    with pytest.raises(KeyboardInterrupt):
        recsql.import_ratings(engine, path)
    monkeypatch.undo()
    with engine.connect() as conn:
        indexes = {index["name"] for index in inspect(conn).get_indexes("ratings")}
    assert "ix_ratings_user_id_movie_id" in indexes
    assert _ratings(engine) == []
    recsql.import_ratings(engine, path)
    recsql.import_ratings(engine, path, replace=True)
    assert len(_ratings(engine)) == 2


def _scale(engine) -> tuple[float, float] | None:
    with engine.connect() as conn:
        return stored_scale(conn)


def test_the_rating_scale_refuses_ratings_off_it(engine, run, tmp_path):
    """The first import sets the scale; a later file with 99 or -7 is refused by line and
    changes nothing; --rating-scale widens it; a scale the stored ratings break is refused."""
    run("import", "ratings", _write(tmp_path, "one.csv", "user_id,movie_id,value\n1,4,3\n"))
    assert _scale(engine) is None  # one value is no scale yet
    run("import", "ratings", _write(tmp_path, "a.csv", "user_id,movie_id,value\n1,2,5\n1,3,1\n"), "--replace")
    assert _scale(engine) == (1, 5)
    before = _ratings(engine)
    for bad, line in (("2,2,99\n2,3,4\n", 2), ("2,2,4\n2,3,-7\n", 3)):
        out = run("import", "ratings", _write(tmp_path, "b.csv", "user_id,movie_id,value\n" + bad), ok=False).output
        assert f"b.csv, line {line}: rating" in out and "outside the rating scale 1,5" in out
        assert "--rating-scale" in out and "Traceback" not in out
    assert _ratings(engine) == before and _scale(engine) == (1, 5)
    run("import", "ratings", _write(tmp_path, "c.csv", "user_id,movie_id,value\n3,2,10\n"), "--rating-scale", "1,10")
    assert _scale(engine) == (1, 10) and len(_ratings(engine)) == 3
    out = run(
        "import",
        "ratings",
        _write(tmp_path, "d.csv", "user_id,movie_id,value\n4,2,2\n"),
        "--rating-scale",
        "1,5",
        ok=False,
    ).output
    assert "the stored ratings span 1 to 10" in out and _scale(engine) == (1, 10)
    for scale in ("5,1", "1", "a,b", "1,inf"):
        assert "LOW < HIGH" in run("import", "ratings", tmp_path / "d.csv", "--rating-scale", scale, ok=False).output
    assert _scale(engine) == (1, 10) and len(_ratings(engine)) == 3


def test_predictions_are_clipped_to_the_stored_scale(engine, run, tmp_path):
    """A catalogue rated 1..5 so far, on a scale of 0.5..10: stored predictions may span the scale."""
    lines = "\n".join(f"{u},{m},{(u + m) % 5 + 1}" for u in range(1, 9) for m in range(1, 7))
    run("import", "ratings", _write(tmp_path, "r.csv", "user_id,movie_id,value\n" + lines), "--rating-scale", "0.5,10")
    run("train", "--features", 2, "--samples", 0)
    model = recsql.list_models(engine)[0]
    assert (model.rating_min, model.rating_max) == (0.5, 10)


def test_titles_with_any_line_break_round_trip(engine):
    """Titles from an application's table may hold \\r, \\n or both: stored exactly
    (PostgreSQL's CSV COPY ends a row at an unquoted \\r)."""
    titles = ["a\rb", "c\nd", "e\r\nf", "", 'g,"h"']
    with engine.begin() as conn:
        upsert_movies(conn, pd.DataFrame({"movie_id": range(1, 6), "title": titles, "genres": [None] * 5}))
    with engine.connect() as conn:
        stored = conn.execute(select(Movie.title).order_by(Movie.movie_id)).scalars().all()
    assert stored == titles


# ------------------------------------------------------------------ any CSV layout


def _movies(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(select(Movie.movie_id, Movie.title, Movie.genres).order_by(Movie.movie_id)).all()


def test_a_custom_header_layout_with_extra_columns_reordered(engine, run, tmp_path):
    """--columns maps fields to header names in any order; other columns (one holding
    the delimiter inside quotes) are ignored; ids stay exact 64-bit integers."""
    path = _write(
        tmp_path,
        "reviews.csv",
        (
            "ts;Stars;note;item;customer\n"
            '100;4;"good; really";10;1\n'
            '-86400;4.5;"say ""hi""";9223372036854775807;"1541815603606036481"\n'
        ),
    )
    out = run(
        "import", "ratings", path, "--columns", "user=customer,movie=item,rating=stars,time=ts", "--delimiter", ";"
    ).output
    assert "imported 2 ratings" in out and "custom format" in out
    assert _ratings(engine) == [(1, 10, 4.0, 100), (1541815603606036481, 2**63 - 1, 4.5, -86400)]
    assert all(type(r[0]) is int and type(r[1]) is int for r in _ratings(engine))


def test_a_custom_layout_through_the_python_api(engine, tmp_path):
    """The same layouts as a dict or a string; without time, rated_at stays NULL."""
    path = _write(tmp_path, "r.tsv", "stars\tcustomer\titem\n5\t1\t2\n3\t2\t2\n")
    result = recsql.import_ratings(
        engine, path, columns={"user": "customer", "movie": "item", "rating": "stars"}, delimiter="\t"
    )
    assert (result.format, result.rows) == ("custom", 2)
    recsql.import_ratings(engine, path, columns="user=customer,movie=item,rating=stars", delimiter="tab")
    assert [r for r in _ratings(engine)] == [(1, 2, 5.0, None), (2, 2, 3.0, None)] * 2


def test_no_header_positions_and_the_default_order(engine, run, tmp_path):
    path = _write(tmp_path, "plain.csv", "20,1,4,1000\n30,2,5,2000\n")
    run("import", "ratings", path, "--no-header", "--columns", "movie=1,user=2,rating=3,time=4")
    assert _ratings(engine) == [(1, 20, 4.0, 1000), (2, 30, 5.0, 2000)]
    run("import", "ratings", path, "--no-header", "--replace")  # tutorial order, the 4th column ignored
    assert _ratings(engine) == [(20, 1, 4.0, None), (30, 2, 5.0, None)]
    recsql.import_ratings(
        engine, path, columns={"user": 1, "movie": 2, "rating": 3, "time": 4}, header=False, replace=True
    )
    assert _ratings(engine) == [(20, 1, 4.0, 1000), (30, 2, 5.0, 2000)]
    out = run("import", "ratings", path, "--no-header", "--columns", "user=1,movie=2,rating=5", ok=False).output
    assert f"{path}, line 1: --columns reads rating from column 5, but this line has 4" in out


def test_delimiter_alone_reads_the_built_in_headers(engine, run, tmp_path):
    run(
        "import",
        "ratings",
        _write(tmp_path, "r.csv", "userId|movieId|rating|timestamp\n1|2|4.5|77\n"),
        "--delimiter",
        "|",
    )
    assert _ratings(engine) == [(1, 2, 4.5, 77)]


def test_custom_movies_with_and_without_genres(engine, run, tmp_path):
    path = _write(tmp_path, "catalogue.csv", 'category;name;id\n"crime; drama";"Heat; the film";7\n;Up;8\n')
    run("import", "movies", path, "--columns", "movie=id,title=name,genres=category", "--delimiter", ";")
    assert _movies(engine) == [(7, "Heat; the film", "crime; drama"), (8, "Up", None)]
    run("import", "movies", _write(tmp_path, "m.csv", "9,Nine\n"), "--no-header", "--columns", "movie=1,title=2")
    assert _movies(engine)[-1] == (9, "Nine", None)


def test_a_column_missing_from_the_header_is_one_error_at_line_1(engine, run, tmp_path):
    run("import", "ratings", _write(tmp_path, "good.csv", "user_id,movie_id,value\n7,8,4\n"))
    before = _ratings(engine)
    path = _write(tmp_path, "r.csv", "customer,item,stars\n1,2,5\n")
    out = run("import", "ratings", path, "--columns", "user=customer,movie=product,rating=score", ok=False).output
    assert out.strip() == (
        f"Error: {path}, line 1: the header has no column 'product' (movie) or 'score' (rating); "
        "its columns: 'customer', 'item', 'stars'"
    )
    data = _write(tmp_path, "d.csv", "1,2,5\n")
    out = run("import", "ratings", data, "--columns", "user=customer,movie=item,rating=stars", ok=False).output
    assert "line 1: the header has no column" in out and "use --no-header" in out
    assert _ratings(engine) == before


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--columns", "user=a,movie=b,stars=c"],
            "unknown field 'stars' in --columns; the ratings fields are user, "
            "movie, rating (required) and time (optional)",
        ),
        (["--columns", "user=a,movie=b"], "--columns does not name rating; the ratings fields are"),
        (["--columns", "user:a,movie:b,rating:c"], "--columns takes FIELD=COLUMN pairs separated by commas"),
        (["--columns", "user=a,,movie=b,rating=c"], "--columns takes FIELD=COLUMN pairs"),
        (["--columns", "user=a,movie=b,rating="], "--columns takes FIELD=COLUMN pairs"),
        (["--columns", "user=a,user=b,movie=c,rating=d"], "--columns names the field 'user' twice"),
        (["--columns", "user=a,movie=A,rating=c"], "--columns gives user and movie the same column 'A'"),
        (["--no-header", "--columns", "user=a,movie=2,rating=3"], "without a header line, --columns gives positions"),
        (["--no-header", "--columns", "user=0,movie=2,rating=3"], "positions from 1"),
        (["--delimiter", ";;"], "a delimiter is one character"),
        (["--delimiter", '"'], "a delimiter is one character"),
        (["--delimiter", "."], "a delimiter is one character"),
        (["--columns", "user=a,movie=b,rating=c", "--format", "tutorial"], "--format reads a built-in layout"),
    ],
)
def test_malformed_layout_options_are_one_invalid_parameter(engine, run, tmp_path, args, message):
    path = _write(tmp_path, "r.csv", "a,b,c\n1,2,5\n")
    out = run("import", "ratings", path, *args, ok=False).output
    assert message in out and len(out.strip().splitlines()) == 1, out
    assert _ratings(engine) == []


def test_malformed_columns_through_the_api_name_the_movie_fields():
    with pytest.raises(InvalidParameter, match="the movies fields are movie, title"):
        read_movies_file("unused.csv", columns={"film": "id", "title": "name"})
    with pytest.raises(InvalidParameter, match="with a header line, --columns names its columns"):
        read_movies_file("unused.csv", columns={"movie": 1, "title": "name"})


@pytest.mark.parametrize(
    "kind,content,suggested",
    [
        ("ratings", "user,item,rating\n1,2,5\n2,3,4\n", "--columns user=user,movie=item,rating=rating"),
        (
            "ratings",
            "Customer ID;Product;Stars;created_at\n1;2;5;99\n",
            "--columns 'user=Customer ID,movie=Product,rating=Stars,time=created_at' --delimiter ';'",
        ),
        ("ratings", "1\t2\t5\n", "--no-header --delimiter tab"),
        ("ratings", "1,2,5\n2,3,4\n", "--no-header"),
        ("movies", 'id,name,category\n1,"A, the",x\n', "--columns movie=id,title=name,genres=category"),
    ],
)
def test_an_unknown_header_suggests_columns_that_work(engine, run, tmp_path, kind, content, suggested):
    """The refusal names the exact options to add, and adding them imports the file."""
    path = _write(tmp_path, "f.csv", content)
    out = run("import", kind, path, ok=False).output
    assert f"{path}, line 1: cannot tell the {kind} format" in out and out.rstrip().endswith(suggested), out
    hint = out.rstrip().rsplit(": ", 1)[1]
    assert "imported" in run("import", kind, path, *shlex.split(hint)).output
    assert _ratings(engine) if kind == "ratings" else _movies(engine)


def test_an_unknown_header_without_telling_names_gets_the_template(run, tmp_path):
    path = _write(tmp_path, "f.csv", "who,what,how\n1,2,5\n")
    out = run("import", "ratings", path, ok=False).output
    assert "use --format, or --columns FIELD=NAME,... (fields: user, movie, rating, time)" in out
    out = run("import", "ratings", path, "--delimiter", ",", ok=False).output
    assert "line 1: the header is not a built-in one; name its columns: --columns FIELD=NAME" in out


@pytest.mark.parametrize(
    "content,line,reason",
    [
        ("c;i;s\n1;2;5\n1;x;4\n", 3, "movie id 'x' is not a whole number"),
        ("c;i;s\n1;2;5\n1;2\n", 3, "expected 3 fields (as the header has), found 2"),
        ("c;i;s\n1;2;5\n\n1;2;3\n", 3, "empty line"),
        ('c;i;s\n1;2;"5\n', 2, "never ends"),
        ("c;i;s\n1;2;5\n1;2;99\n", 3, "rating 99 is outside the rating scale 1,5"),
        ("c;i;s\n", None, "the file has a header but no data rows"),
    ],
)
def test_a_bad_line_in_a_custom_layout_imports_nothing(engine, run, tmp_path, content, line, reason):
    run("import", "ratings", _write(tmp_path, "good.csv", "user_id,movie_id,value\n7,8,1\n7,9,5\n"))
    before = _ratings(engine)
    path = _write(tmp_path, "bad.csv", content)
    out = run("import", "ratings", path, "--columns", "user=c,movie=i,rating=s", "--delimiter", ";", ok=False).output
    where = f"{path}, line {line}:" if line else f"{path}:"
    assert where in out and reason in out and len(out.strip().splitlines()) == 1, out
    assert _ratings(engine) == before


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_a_custom_layout_reads_the_encoding_its_byte_order_mark_names(tmp_path, encoding):
    """Quoted header names, matched case-insensitively; a decimal comma is not a number."""
    path = _write(tmp_path, "r.csv", '"Kunde";"Film";"Sterne"\r\n1;"2";"4.5"\r\n"Müller";3;4\r\n'.encode(encoding))
    with pytest.raises(InputError, match=r"line 3: user id 'Müller' is not a whole number"):
        read_ratings_file(path, columns="user=kunde,movie=film,rating=sterne", delimiter=";")
    path.write_bytes('"Kunde";"Film";"Sterne"\r\n1;"2";"4.5"\r\n7;3;"4,5"\r\n'.encode(encoding))
    with pytest.raises(InputError, match=r"line 3: rating '4,5' is not a number"):
        read_ratings_file(path, columns="user=kunde,movie=film,rating=sterne", delimiter=";")
    path.write_bytes('"Kunde";"Film";"Sterne"\r\n1;"2";"4.5"\r\n'.encode(encoding))
    frame = read_ratings_file(path, columns="user=kunde,movie=film,rating=sterne", delimiter=";")
    assert frame[["user_id", "movie_id", "value"]].values.tolist() == [[1, 2, 4.5]]


def test_a_tab_separated_file_keeps_an_empty_last_field(tmp_path):
    """Trailing whitespace at the end of the file is trimmed, but not the delimiter: the
    last movie's empty genres stay a field."""
    path = _write(tmp_path, "m.tsv", "id\tname\tgenres\n1\tOne\tDrama\n2\tTwo\t\n")
    frame = read_movies_file(path, columns="movie=id,title=name,genres=genres", delimiter="tab")
    assert frame.title.tolist() == ["One", "Two"] and frame.genres.tolist()[0] == "Drama"
    assert frame.genres.isna().tolist() == [False, True]


def test_a_first_line_with_a_carriage_return_is_still_one_clear_refusal(tmp_path):
    with pytest.raises(InputError, match="line 1: cannot tell the ratings format"):
        read_ratings_file(_write(tmp_path, "r.csv", "a\rb,c\n1,2\n"))


def test_text_after_a_closing_quote_is_refused_by_line(tmp_path):
    """`"ab"c` is not CSV; lenient readers silently make it `abc`.  Escaped quotes and a
    quote inside an unquoted field still read as CSV says."""
    path = _write(tmp_path, "m.csv", 'movie_id,title,genre\n1,"a""b",x\n2,c"d,y\n3,"ab"c,z\n')
    with pytest.raises(InputError, match=r"m.csv, line 4: text after the closing quote"):
        read_movies_file(path)
    path.write_text('movie_id,title,genre\n1,"a""b",x\n2,c"d,y\n')
    assert read_movies_file(path)["title"].tolist() == ['a"b', 'c"d']


def test_line_numbers_hold_across_chunks_and_batches(tmp_path, monkeypatch):
    """Records are tokenized a chunk at a time and checked a batch at a time: a bad field
    far down, after quoted line breaks in every record, is still refused at its line."""
    from recsql.data import reader

    monkeypatch.setattr(reader, "CHUNK", 7)
    monkeypatch.setattr(reader, "BATCH", 10)
    rows = [f'"{i}\n",{i % 5},4' for i in range(1, 60)]  # every record spans two lines
    path = _write(tmp_path, "r.csv", "user_id,movie_id,value\n" + "\n".join(rows) + "\n")
    frame = read_ratings_file(path)
    assert frame.user_id.tolist() == list(range(1, 60))
    assert frame.attrs["lines"].numbers.tolist() == list(range(2, 120, 2))
    rows[36] = rows[36].replace(",4", ",x")
    path.write_text("user_id,movie_id,value\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"r.csv, line 74: rating 'x' is not a number"):
        read_ratings_file(path)
    titles = "\n".join(f'{i},"Part\r\n{i}",Drama' for i in range(1, 40))
    with pytest.raises(InputError, match=r"m.csv, line 80: movie id 39 appears twice"):
        read_movies_file(_write(tmp_path, "m.csv", f"movie_id,title,genre\n{titles}\n39,Again,x\n"))


def test_a_field_beyond_the_tokenizers_limit_is_refused_by_line(tmp_path):
    path = _write(tmp_path, "m.csv", 'movie_id,title,genre\n1,A,x\n2,"' + "y" * 200_000 + '",z\n')
    with pytest.raises(InputError, match=r"m.csv, line 3: a field longer than 131,072 characters"):
        read_movies_file(path)

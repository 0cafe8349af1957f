"""A web API on recsql in a few dozen lines of Flask (issue 11's pattern; tested by
tests/test_web_api.py against SQLite and PostgreSQL).

    pip install recsql flask
    RECSQL_DATABASE_URL=postgresql://app@db/shop flask --app docs/examples/flask_app.py run

    GET  /movies/3/similar?limit=5                  movies like movie 3
    GET  /movies/similar?id=3&id=9&limit=5          several movies' lists in one query
    GET  /users/42/recommendations?limit=10         a user's list (popular movies for a new user)
    GET  /users/42/predictions/7                    how user 42 would rate movie 7
    POST /recommendations?limit=10                  {"ratings": {"3": 5, "9": 4}}: a visitor's list

One Recommender serves every request and every thread: on an engine it borrows a pooled
connection per call and keeps the active model's factors loaded between requests (it
notices a retrain by itself).  Every error recsql raises says its HTTP status
(``exc.http_status``: 400 bad request, 404 unknown id, 503 try again later), so one
handler answers them all.  Flask's ``<int:...>`` converters turn path ids into ints;
query strings and JSON keys arrive as text, which the helpers below convert.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Flask, request

import recsql
from recsql.errors import InvalidParameter, RecsqlError


def create_app(recommender: recsql.Recommender | None = None) -> Flask:
    """The application, on ``recommender`` (default: one on ``$RECSQL_DATABASE_URL``)."""
    app = Flask(__name__)
    rec = recommender if recommender is not None else recsql.Recommender.from_url()
    app.extensions["recsql"] = rec  # the one instance all requests share

    @app.get("/movies/<int:movie_id>/similar")
    def similar(movie_id: int) -> Any:
        return _listed(rec.similar(movie_id, limit=_limit(5)))

    @app.get("/movies/similar")
    def similar_many() -> Any:
        ids = [_int(raw, "id") for raw in request.args.getlist("id")]
        lists = rec.similar_many(ids, limit=_limit(5))
        return {str(movie_id): _listed(rows) for movie_id, rows in lists.items()}

    @app.get("/users/<int:user_id>/recommendations")
    def recommendations(user_id: int) -> Any:
        return _listed(rec.recommend(user_id, limit=_limit(10)))

    @app.get("/users/<int:user_id>/predictions/<int:movie_id>")
    def prediction(user_id: int, movie_id: int) -> Any:
        return {"user_id": user_id, "movie_id": movie_id, "predicted_rating": rec.predict(user_id, movie_id)}

    @app.post("/recommendations")
    def recommendations_for_ratings() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("ratings"), dict):
            raise InvalidParameter('send a JSON object like {"ratings": {"3": 5, "9": 4}}')
        ratings = {_int(movie, "movie id"): value for movie, value in body["ratings"].items()}
        return _listed(rec.recommend_for_ratings(ratings, limit=_limit(10)))

    @app.errorhandler(RecsqlError)
    def recsql_error(exc: RecsqlError) -> Any:
        return {"error": str(exc)}, exc.http_status

    return app


def _listed(rows: list[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(row) for row in rows]


def _int(raw: str, what: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameter(f"{what} must be a whole number, not {raw!r}") from None


def _limit(default: int) -> int:
    """``?limit=``; recsql itself refuses one out of range (1 to Recommender.MAX_LIMIT)."""
    raw = request.args.get("limit")
    return default if raw is None else _int(raw, "limit")

"""Errors a user can cause.

Every exception here carries a message written for the person at the terminal: the CLI
prints it as one line and exits non-zero, Python callers catch the specific class.
Anything that is *not* a RecsqlError is a bug in recsql and is allowed to show a traceback.

Each class also says which HTTP status a web application should answer with
(``http_status``), so one handler serves them all::

    except RecsqlError as exc:
        return {"error": str(exc)}, exc.http_status

4xx: the request was wrong (a bad parameter, an id that does not exist); 503: the
service cannot answer *yet* and a retry later may succeed (database down, a writer
holding the lock, no model trained, a schema upgrade pending); 500: the deployment is
broken in a way retrying will not fix.  README's "HTTP status codes" table lists them
and a test keeps it equal to the code.
"""

from __future__ import annotations

from typing import ClassVar


class RecsqlError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""

    http_status: ClassVar[int] = 500  # a subclass that forgets to choose is a server-side problem


class DatabaseUnavailable(RecsqlError):
    """The database URL cannot be opened (server down, bad path, bad credentials), or the
    database failed a query for a reason of its own (connection lost, locked, timed out)."""

    http_status = 503  # the database may be back in a moment


class SchemaError(RecsqlError):
    """The database schema is not the one this version of recsql expects."""

    http_status = 500  # foreign tables or missing migrations: someone has to fix the deployment


class SchemaOutOfDate(SchemaError):
    """The database is at an older migration; `recsql db upgrade` fixes it."""

    http_status = 503  # mid-deploy: new code before the upgrade ran, which is coming


class InputError(RecsqlError):
    """An input file cannot be imported; the message names the file, line and reason."""

    http_status = 400  # the uploaded file is wrong

    def __init__(self, path: object, reason: str, line: int | None = None):
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class Busy(RecsqlError):
    """Another process holds the writer lock (a retrain, activation or prune is running)."""

    http_status = 503  # retry when the writer is done


class LockLost(RecsqlError):
    """A writer's lock ended while it worked (its connection was ended); it stopped
    before writing or activating anything, and another writer may have taken over."""

    http_status = 503  # retry: the next retrain starts afresh


class Terminated(RecsqlError):
    """The process was asked to stop (SIGTERM) while it worked; nothing it did is visible."""

    http_status = 503  # the server is going down; another instance can answer


class NoRatings(RecsqlError):
    """There is nothing to train on."""

    http_status = 503  # like NoActiveModel: the service has no data yet


class NoActiveModel(RecsqlError):
    """No training run has finished yet, so there is nothing to serve."""

    http_status = 503  # the first retrain will fix it without any change to the request


class NotFound(RecsqlError, LookupError):
    """An id (of a model, movie or user) that does not exist where it was looked up."""

    http_status = 404


class UnknownModel(NotFound):
    """A model id that is not in the ``models`` table."""

    def __init__(self, model_id: object):
        super().__init__(f"unknown model {model_id}: see `recsql models` for the ids")
        self.model_id = model_id


class UnknownMovie(NotFound):
    """A movie id that the active model (or the catalogue) does not know."""

    def __init__(self, movie_id: object, detail: str = "is not in the active model"):
        super().__init__(f"unknown movie {movie_id}: {detail}")
        self.movie_id = movie_id


class UnknownUser(NotFound):
    """A user id that the active model does not know."""

    def __init__(self, user_id: object, detail: str = "is not in the active model"):
        super().__init__(f"unknown user {user_id}: {detail}")
        self.user_id = user_id


class ModelFitError(RecsqlError):
    """A solver produced non-finite factors (diverged); nothing is written."""

    http_status = 500  # the server's computation failed; the request was fine


class InvalidParameter(RecsqlError, ValueError):
    """A parameter outside its allowed range (features < 1, unknown metric, ...)."""

    http_status = 400


class EngineUnavailable(RecsqlError):
    """The Spark backend cannot run here: pyspark, Java or the JDBC driver is missing, or
    Spark could not start on the master URL given."""

    http_status = 500  # the deployment lacks a part; retrying will not install it

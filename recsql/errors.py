"""Errors a user can cause.

Every exception here carries a message written for the person at the terminal: the CLI
prints it as one line and exits non-zero, Python callers catch the specific class.
Anything that is *not* a RecsqlError is a bug in recsql and is allowed to show a traceback.
"""

from __future__ import annotations


class RecsqlError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class DatabaseUnavailable(RecsqlError):
    """The database URL cannot be opened (server down, bad path, bad credentials)."""


class SchemaError(RecsqlError):
    """The database schema is not the one this version of recsql expects."""


class SchemaOutOfDate(SchemaError):
    """The database is at an older migration; `recsql db upgrade` fixes it."""


class InputError(RecsqlError):
    """An input file cannot be imported; the message names the file, line and reason."""

    def __init__(self, path: object, reason: str, line: int | None = None):
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class Busy(RecsqlError):
    """Another process holds the writer lock (a retrain, activation or prune is running)."""


class Terminated(RecsqlError):
    """The process was asked to stop (SIGTERM) while it worked; nothing it did is visible."""


class NoRatings(RecsqlError):
    """There is nothing to train on."""


class NoActiveModel(RecsqlError):
    """No training run has finished yet, so there is nothing to serve."""


class UnknownModel(RecsqlError, LookupError):
    """A model id that is not in the ``models`` table."""

    def __init__(self, model_id: object):
        super().__init__(f"unknown model {model_id}: see `recsql models` for the ids")
        self.model_id = model_id


class UnknownMovie(RecsqlError, LookupError):
    """A movie id that the active model (or the catalogue) does not know."""

    def __init__(self, movie_id: object, detail: str = "is not in the active model"):
        super().__init__(f"unknown movie {movie_id}: {detail}")
        self.movie_id = movie_id


class UnknownUser(RecsqlError, LookupError):
    """A user id that the active model does not know."""

    def __init__(self, user_id: object, detail: str = "is not in the active model"):
        super().__init__(f"unknown user {user_id}: {detail}")
        self.user_id = user_id


class ModelFitError(RecsqlError):
    """A solver produced non-finite factors (diverged); nothing is written."""


class InvalidParameter(RecsqlError, ValueError):
    """A parameter outside its allowed range (features < 1, unknown metric, ...)."""

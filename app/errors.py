"""The application's one exception family. app/exception_handlers.py turns each into the API envelope."""
from __future__ import annotations


class ApplicationError(Exception):
    status_code = 400
    default_message = "The request could not be served."

    def __init__(self, message: str | None = None, *, extra: dict | None = None):
        self.message = message or self.default_message
        self.extra = extra or {}
        super().__init__(self.message)


class AuthenticationError(ApplicationError):
    status_code = 401


class UnknownAccountError(AuthenticationError):
    """A valid token (or refresh token) whose user id the auth database does not hold: a token of the original
    MusicBud backend for a user that never logged in here, or a deleted user."""

    default_message = "The token's user is unknown here: log in to this service again."


class InvalidContentTypeError(ApplicationError):
    """A type the endpoint does not serve, named in a path or a query (400, listing the valid ones)."""

    status_code = 400


class UnknownContentTypeError(ApplicationError):
    status_code = 404


class UnknownItemError(ApplicationError):
    status_code = 404


class TrainingInProgressError(ApplicationError):
    status_code = 409
    default_message = "A model training is already running; try again when it has finished."


class ServiceUnavailableError(ApplicationError):
    status_code = 503
    default_message = "Recommendations cannot be served right now."

"""One exception handler for every view: the app's errors and DRF's own become the response envelope
{"success": false, "message": <words>, "data": null[, "errors": {field: [...]}]}. Anything unknown is
logged and stays a 500, in the same envelope."""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from app.errors import ApplicationError

logger = logging.getLogger(__name__)

_MESSAGES = {
    exceptions.NotAuthenticated: "Authentication credentials were not provided: send 'Authorization: Bearer <access token>'.",
    exceptions.AuthenticationFailed: "The access token is invalid or expired: log in again or refresh it.",
    InvalidToken: "The access token is invalid or expired: log in again or refresh it.",
    exceptions.PermissionDenied: "You do not have permission to do this.",
}


def _message_of(detail) -> str:
    if isinstance(detail, (list, tuple)) and detail:
        return _message_of(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        return _message_of(value) if key in ("detail", "non_field_errors") else f"{key}: {_message_of(value)}"
    return str(detail)


def _error_body(message: str) -> dict:
    return {"success": False, "message": message, "data": None}


def envelope(message: str, status_code: int, errors: dict | None = None, headers: dict | None = None) -> Response:
    body = _error_body(message)
    if errors:
        body["errors"] = errors
    return Response(body, status=status_code, headers=headers)


def envelope_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return envelope(exc.message, exc.status_code, errors=exc.extra or None)
    if isinstance(exc, Http404):
        return envelope("Not found.", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return envelope("The request body is too large.", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, TooManyFieldsSent):
        return envelope("Too many query or form parameters.", status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, SuspiciousOperation):
        return envelope("Bad request.", status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, TokenError):
        exc = InvalidToken(exc.args[0] if exc.args else None)
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, exceptions.ValidationError):
            detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            return envelope(f"Invalid input: {_message_of(detail)}", exc.status_code, errors=detail, headers=headers)
        if isinstance(exc, exceptions.Throttled):
            wait = f" Try again in {int(exc.wait)} s." if exc.wait is not None else ""
            return envelope(f"Too many requests.{wait}", exc.status_code, headers=headers)
        for cls, message in _MESSAGES.items():
            if isinstance(exc, cls):
                return envelope(message, exc.status_code, headers=headers)
        return envelope(_message_of(exc.detail), exc.status_code, headers=headers)
    logger.error("Unhandled error in %s", context.get("view").__class__.__name__ if context else "?", exc_info=exc)
    return envelope("Internal server error.", status.HTTP_500_INTERNAL_SERVER_ERROR)


# --- Django's own error pages (musicbud/urls.py's handler400/403/404/500) ---------------------------------------
# What no view answers: a path no pattern matches (/v1/experiments/x/), a query string Django refuses before any
# view runs (too many fields), an error outside DRF. Each gets the same envelope as a view's error, never HTML.
def _django_envelope(message: str, status_code: int):
    from django.http import JsonResponse

    return JsonResponse(_error_body(message), status=status_code)


def bad_request(request, exception=None):
    return _django_envelope("Bad request.", status.HTTP_400_BAD_REQUEST)


def permission_denied(request, exception=None):
    return _django_envelope(_MESSAGES[exceptions.PermissionDenied], status.HTTP_403_FORBIDDEN)


def page_not_found(request, exception=None):
    return _django_envelope("Not found.", status.HTTP_404_NOT_FOUND)


def server_error(request):
    return _django_envelope("Internal server error.", status.HTTP_500_INTERNAL_SERVER_ERROR)

"""/static/<path>: the files of the installed apps' static folders (Swagger UI and Redoc from
drf-spectacular-sidecar), served by the service itself so the docs work with no network. Read-only, only what
Django's static finders find (a path outside them is a 404), cached by the browser for a day."""
from __future__ import annotations

import mimetypes
from functools import wraps

from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404
from django.views.decorators.http import require_GET


@require_GET
def static_file(request, path: str):
    try:
        found = finders.find(path)
    except SuspiciousFileOperation:
        found = None
    if not found or isinstance(found, list):
        raise Http404("No such file.")
    content_type, _ = mimetypes.guess_type(found)
    response = FileResponse(open(found, "rb"), content_type=content_type or "application/octet-stream")
    response["Cache-Control"] = "public, max-age=86400"
    return response


# The admin's pages (the dashboard, Swagger UI, Redoc) may load nothing from elsewhere: the browser enforces it.
# (Redoc's bundle always shows a logo from its vendor's CDN: this policy is what keeps it from being fetched.)
SAME_ORIGIN_ONLY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; "
                    "font-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def same_origin_only(view):
    """A sync view whose pages carry the SAME_ORIGIN_ONLY Content-Security-Policy."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = SAME_ORIGIN_ONLY
        return response

    return wrapped

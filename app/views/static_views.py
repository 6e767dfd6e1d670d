"""/static/<path>: the files of the installed apps' static folders (Swagger UI and Redoc from
drf-spectacular-sidecar), served by the service itself so the docs work with no network. Read-only, only what
Django's static finders find (a path outside them is a 404), cached by the browser for a day."""
from __future__ import annotations

import mimetypes

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

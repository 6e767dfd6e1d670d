"""musicbud/lean.py: the served ASGI application answers exactly as Django's own handler and middleware do,
without a thread hop for a request that needs none; and each copied piece of framework code is checked against
the installed framework, so an upgrade cannot silently leave a stale copy in service."""
from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import SyncToAsync
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from musicbud.asgi import application
from musicbud import lean
from musicbud.lean import LeanASGIHandler

STOCK_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]


def _token() -> str:
    token = AccessToken()
    token["user_id"], token["username"] = "1", "demo"
    return str(token)


async def asgi_get(app, path: str, token: str | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
    headers = [(b"host", b"127.0.0.1")] + ([(b"authorization", f"Bearer {token}".encode())] if token else [])
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}
    messages = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = []

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # a client that stays connected: the handler cancels this when done

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def test_the_served_application_is_the_lean_handler():
    assert isinstance(application, LeanASGIHandler)


@pytest.mark.parametrize("path, with_token", [("/v1/ping/", True), ("/v1/ping/", False), ("/v1/ping", True),
                                              ("/v1/nowhere/", True)])
async def test_it_answers_as_djangos_handler_and_middleware_do(path, with_token):
    token = _token() if with_token else None
    lean = await asgi_get(application, path, token)
    with override_settings(MIDDLEWARE=STOCK_MIDDLEWARE):
        stock = await asgi_get(ASGIHandler(), path, token)
    assert lean == stock
    assert lean[1][b"X-Content-Type-Options"] == b"nosniff"  # the middleware ran


async def test_an_authenticated_ping_makes_no_thread_hop(monkeypatch):
    hops = []
    original = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", self.func))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    status, _, body = await asgi_get(application, "/v1/ping/", _token())
    assert status == 200 and b'"username":"demo"' in body
    assert hops == []


def _source_sha256(dotted: str) -> str:
    import hashlib
    import importlib
    import inspect

    module_name, _, qualname = dotted.rpartition(".")
    module_name, _, class_name = module_name.rpartition(".")
    original = getattr(getattr(importlib.import_module(module_name), class_name), qualname)
    return hashlib.sha256(inspect.getsource(original).encode()).hexdigest()


@pytest.mark.parametrize("distribution", sorted(lean.COPIED_FROM))
def test_the_installed_framework_is_the_version_the_copies_were_taken_from(distribution):
    from importlib.metadata import version

    copied = lean.COPIED_FROM[distribution]
    assert version(distribution) == copied, (
        f"musicbud/lean.py copies code of {distribution} {copied}, but {version(distribution)} is installed: "
        f"compare the copies in musicbud/lean.py with the new {distribution}, carry its changes over, then update "
        f"COPIED_FROM and ORIGINALS there")


@pytest.mark.parametrize("original", sorted(lean.ORIGINALS))
def test_each_copied_function_is_still_what_its_original_says(original):
    assert _source_sha256(original) == lean.ORIGINALS[original], (
        f"{original} is not the code musicbud/lean.py copied (its source changed): read the new {original}, "
        f"carry its changes over to the copy in musicbud/lean.py, then update ORIGINALS there")


def test_the_guard_would_notice_a_changed_original(monkeypatch):
    import inspect

    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: real(obj) + "# changed upstream\n")
    assert _source_sha256("django.core.handlers.asgi.ASGIHandler.handle") != \
        lean.ORIGINALS["django.core.handlers.asgi.ASGIHandler.handle"]


def test_views_only_subclass_the_lean_base_view():
    from app.views import auth_views, health_views, recommendations_views
    from app.views.base import ApiView

    for module in (auth_views, health_views, recommendations_views):
        for name, obj in vars(module).items():
            if isinstance(obj, type) and name.endswith("Api") and obj.__module__ == module.__name__:
                assert issubclass(obj, ApiView), name
                assert "async_dispatch" not in vars(obj) and "dispatch" not in vars(obj), name

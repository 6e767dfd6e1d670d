"""Stateless JWT authentication that remembers the tokens it has verified.

A client sends the same access token with every request for the token's whole lifetime, and verifying it
again each time (PyJWT's base64 checks, three JSON decodes, the HMAC) costs more than scoring a
recommendation. Each process remembers, for the token strings whose signature and claims it has verified
with the current key, when they expire; the expiry (with simplejwt's leeway) is still checked on every
request, and an expired token goes through simplejwt again, which answers as it always does. Only exact
token strings are remembered, at most MAX_TOKENS of them (oldest forgotten first).

Tokens of the original MusicBud backend (simplejwt's, signed with the same key) carry only `user_id`, the
Django user's pk, and not the `username` claim this service's tokens add. For those the username is read from
the auth database in a worker thread (the request waits for it: authentication runs on the event loop, where
the ORM may not be used) and remembered per user id for as long as the token is valid; an id the database does
not hold is answered 401 (UnknownAccountError).
"""
from __future__ import annotations

import hmac
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTStatelessUserScheme
from rest_framework.authentication import BaseAuthentication
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from app.errors import UnknownAccountError

MAX_TOKENS = 1024  # ~2.5 kB each (the validated Token and its claims)
MAX_USERNAMES = 4096  # user id -> username of tokens without the username claim

_LOOKUPS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="token-username")


class CachedJWTStatelessUserAuthentication(JWTStatelessUserAuthentication):
    _verified: dict[bytes, tuple[Token, float]] = {}  # raw token -> (validated token, valid until, epoch s)
    _lock = threading.Lock()

    def get_validated_token(self, raw_token: bytes) -> Token:
        cached = self._verified.get(raw_token)
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        token = super().get_validated_token(raw_token)  # raises InvalidToken as simplejwt does
        valid_until = float(token["exp"]) + token.get_token_backend().get_leeway().total_seconds()
        with self._lock:
            if len(self._verified) >= MAX_TOKENS:
                self._verified.pop(next(iter(self._verified)))
            self._verified[raw_token] = (token, valid_until)
        return token

    def get_user(self, validated_token: Token) -> TokenUser:
        user = super().get_user(validated_token)  # InvalidToken without a user_id claim
        if "username" not in validated_token:
            user.username = token_username(validated_token)
        return user


_USERNAMES: dict[str, tuple[str | None, float]] = {}  # user id -> (username or None: unknown, valid until)
_USERNAMES_LOCK = threading.Lock()


def token_username(token: Token) -> str:
    """The username of the user a token without the `username` claim names by its user_id; UnknownAccountError
    when the auth database has no such user. Read once per user id for as long as the token is valid."""
    user_id = str(token[api_settings.USER_ID_CLAIM])
    cached = _USERNAMES.get(user_id)
    if cached is None or time.time() >= cached[1]:
        username = _LOOKUPS.submit(username_for_user_id, user_id=user_id).result()
        valid_until = float(token["exp"]) + token.get_token_backend().get_leeway().total_seconds()
        with _USERNAMES_LOCK:
            if len(_USERNAMES) >= MAX_USERNAMES:
                _USERNAMES.pop(next(iter(_USERNAMES)))
            _USERNAMES[user_id] = cached = (username, valid_until)
    if cached[0] is None:
        raise UnknownAccountError()
    return cached[0]


def username_for_user_id(*, user_id: str) -> str | None:
    """The auth database's username for a user id (None: no such user, or an id that cannot be one)."""
    try:
        rows = get_user_model().objects.filter(pk=user_id).values_list("username", flat=True)[:1]
        return next(iter(rows), None)
    except (ValueError, TypeError):
        return None


class CachedJWTStatelessUserScheme(SimpleJWTStatelessUserScheme):
    """The OpenAPI schema's bearer scheme for it: the same as simplejwt's stateless authentication."""

    target_class = "app.authentication.CachedJWTStatelessUserAuthentication"


class ScrapeUser:
    """Who a request holding the configured scrape token (MUSICBUD_METRICS_TOKEN) is: a scraper, not an account."""

    id = None
    username = "metrics-scraper"
    is_authenticated = True
    is_staff = False


class MetricsTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <MUSICBUD_METRICS_TOKEN>` (compared in constant time), for a Prometheus scraper that
    holds no account. Any other header is left to the next class (a staff JWT); unset token: never matches."""

    keyword = b"bearer"

    def authenticate(self, request):
        expected = settings.MUSICBUD_METRICS_TOKEN
        parts = request.META.get("HTTP_AUTHORIZATION", "").encode().split()
        if not expected or len(parts) != 2 or parts[0].lower() != self.keyword:
            return None
        if hmac.compare_digest(parts[1], expected.encode()):
            return ScrapeUser(), "scrape-token"
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

"""Stateless JWT authentication that remembers the tokens it has verified.

A client sends the same access token with every request for the token's whole lifetime, and verifying it
again each time (PyJWT's base64 checks, three JSON decodes, the HMAC) costs more than scoring a
recommendation. Each process remembers, for the token strings whose signature and claims it has verified
with the current key, when they expire; the expiry (with simplejwt's leeway) is still checked on every
request, and an expired token goes through simplejwt again, which answers as it always does. Only exact
token strings are remembered, at most MAX_TOKENS of them (oldest forgotten first).
"""
from __future__ import annotations

import threading
import time

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTStatelessUserScheme
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.tokens import Token

MAX_TOKENS = 1024  # ~2.5 kB each (the validated Token and its claims)


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


class CachedJWTStatelessUserScheme(SimpleJWTStatelessUserScheme):
    """The OpenAPI schema's bearer scheme for it: the same as simplejwt's stateless authentication."""

    target_class = "app.authentication.CachedJWTStatelessUserAuthentication"

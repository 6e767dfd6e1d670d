"""The app's accounts (Django's auth database): logging in, refreshing an access token, who a token's user is.
Every database read runs in a worker thread (the views are async)."""
from __future__ import annotations

import asyncio

from django.contrib.auth import authenticate, get_user_model
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from app.errors import AuthenticationError, UnknownAccountError

ACCOUNT_FIELDS = ("username", "first_name", "last_name", "email", "is_staff")


async def tokens_issue(*, username: str, password: str) -> dict[str, str]:
    """{"access_token", "refresh_token"} for an active user with this password; AuthenticationError otherwise.
    Both tokens carry the `username` claim besides simplejwt's `user_id`."""
    user = await asyncio.to_thread(authenticate, username=username, password=password)
    if user is None or not user.is_active:
        raise AuthenticationError("Invalid username or password.")
    refresh = RefreshToken.for_user(user)
    refresh["username"] = user.username
    return {"access_token": str(refresh.access_token), "refresh_token": str(refresh)}


async def token_refresh(*, refresh: str) -> str:
    """A new access token for a valid refresh token (simplejwt's TokenError, a 401, otherwise; UnknownAccountError
    when its user id is not in the auth database)."""
    return await asyncio.to_thread(_refreshed, refresh)


def _refreshed(refresh: str) -> str:
    serializer = TokenRefreshSerializer(data={"refresh": refresh})
    try:
        serializer.is_valid(raise_exception=True)  # checks the user is still active: a database read
    except (get_user_model().DoesNotExist, ValueError, TypeError):  # simplejwt looks the user up with .get()
        raise UnknownAccountError() from None
    return serializer.validated_data["access"]


async def account_get(*, user_id) -> dict:
    """What the apps show of the signed-in user: username, first_name, last_name, email, is_staff, and avatar_url
    (None: accounts have no picture here). UnknownAccountError when the id is not in the auth database."""
    rows = await asyncio.to_thread(_account_rows, user_id)
    if not rows:
        raise UnknownAccountError()
    return {**rows[0], "avatar_url": None}


def _account_rows(user_id) -> list[dict]:
    try:
        return list(get_user_model().objects.filter(pk=user_id).values(*ACCOUNT_FIELDS)[:1])
    except (ValueError, TypeError):  # a user id that cannot be a primary key here
        return []

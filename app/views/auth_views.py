"""Login and token refresh."""
from __future__ import annotations

import asyncio

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from app import serializers as shapes
from app.errors import AuthenticationError
from app.views.base import NO_NUL, AnonymousApiView, SharedAnonThrottle, ok, validated


class LoginThrottle(SharedAnonThrottle):
    """Against password guessing."""

    scope = "login"


class LoginApi(AnonymousApiView):
    throttle_classes = [LoginThrottle]
    initial_in_thread = True

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LoginInput"

        username = serializers.CharField(max_length=150, validators=[NO_NUL])
        password = serializers.CharField(max_length=256, trim_whitespace=False, validators=[NO_NUL])

    @extend_schema(request=InputSerializer, responses={
        200: shapes.inline_serializer(name="LoginOutput", fields={
            "success": serializers.BooleanField(), "message": serializers.CharField(),
            "access_token": serializers.CharField(), "refresh_token": serializers.CharField()}),
        400: shapes.error_envelope(), 401: shapes.error_envelope(), 429: shapes.error_envelope()})
    async def post(self, request):
        data = validated(self.InputSerializer, request.data)
        user = await asyncio.to_thread(authenticate, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            raise AuthenticationError("Invalid username or password.")
        refresh = RefreshToken.for_user(user)
        refresh["username"] = user.username
        return Response({"success": True, "message": "Login successful",
                         "access_token": str(refresh.access_token), "refresh_token": str(refresh)})


class TokenRefreshApi(AnonymousApiView):

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TokenRefreshInput"

        refresh = serializers.CharField(max_length=2048, validators=[NO_NUL])

    @extend_schema(request=InputSerializer, responses={
        200: shapes.envelope_serializer("TokenRefreshOutput", shapes.inline_serializer(
            name="AccessToken", fields={"access_token": serializers.CharField()})),
        400: shapes.error_envelope(), 401: shapes.error_envelope()})
    async def post(self, request):
        data = validated(self.InputSerializer, request.data)
        # simplejwt checks the user is still active: a database read, so off the event loop
        refreshed = await asyncio.to_thread(validated, TokenRefreshSerializer, {"refresh": data["refresh"]})
        return ok("Token refreshed successfully", {"access_token": refreshed["access"]})

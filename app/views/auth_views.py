"""Login, token refresh and the signed-in account (app/services/accounts.py)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.response import Response

from app import serializers as shapes
from app.services import accounts
from app.views.base import NO_NUL, NOT_BLANK, AnonymousApiView, SharedAnonThrottle, UserApiView, ok, validated


class LoginThrottle(SharedAnonThrottle):
    """Against password guessing."""

    scope = "login"


class LoginApi(AnonymousApiView):
    """The tokens at the top level, as the MusicBud apps read them (Flutter's LoginResponse reads only
    `access_token` / `refresh_token` there). JSON or form-encoded, as the original backend took."""

    throttle_classes = [LoginThrottle]
    initial_in_thread = True
    parser_classes = [JSONParser, FormParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LoginInput"

        username = serializers.CharField(max_length=150, validators=[NOT_BLANK])
        password = serializers.CharField(max_length=256, trim_whitespace=False, validators=[NO_NUL])

    @extend_schema(request=InputSerializer, responses={
        200: shapes.inline_serializer(name="LoginOutput", fields={
            "success": serializers.BooleanField(), "message": serializers.CharField(),
            "access_token": serializers.CharField(), "refresh_token": serializers.CharField()}),
        400: shapes.error_envelope(), 401: shapes.error_envelope(), 415: shapes.error_envelope(),
        429: shapes.error_envelope()})
    async def post(self, request):
        data = validated(self.InputSerializer, request.data)
        tokens = await accounts.tokens_issue(username=data["username"], password=data["password"])
        return Response({"success": True, "message": "Login successful", **tokens})


_REFRESH_KEYS = {"refresh": "The refresh token (simplejwt's name for it).",
                 "refresh_token": "The same, by the name the React Native app sends."}


def _refresh_field(key: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(max_length=2048, validators=[NOT_BLANK], help_text=_REFRESH_KEYS[key], **kwargs)


class TokenRefreshApi(AnonymousApiView):
    """The new access token at the top level as `access` (simplejwt's name, which Flutter reads) and
    `access_token`, and in the envelope's data."""

    class InputSerializer(serializers.Serializer):
        """`refresh` or `refresh_token` (the schema says exactly one of them; both, equal, are taken too)."""

        refresh = _refresh_field("refresh", required=False)
        refresh_token = _refresh_field("refresh_token", required=False)

        def validate(self, attrs):
            tokens = {attrs[key] for key in _REFRESH_KEYS if key in attrs}
            if not tokens:
                raise serializers.ValidationError(
                    {"refresh": ["This field is required (or send it as refresh_token)."]})
            if len(tokens) > 1:
                raise serializers.ValidationError({"refresh_token": ["refresh and refresh_token differ: send one."]})
            return {"refresh": tokens.pop()}

    @extend_schema(request=shapes.one_of_fields(name="TokenRefreshInput",
                                                fields={key: _refresh_field(key) for key in _REFRESH_KEYS}),
                   responses={200: shapes.inline_serializer(name="TokenRefreshOutput", fields={
                       "success": serializers.BooleanField(), "message": serializers.CharField(),
                       "access": serializers.CharField(), "access_token": serializers.CharField(),
                       "data": shapes.inline_serializer(name="AccessToken",
                                                        fields={"access_token": serializers.CharField()})}),
                              400: shapes.error_envelope(), 401: shapes.error_envelope(),
                              415: shapes.error_envelope()})
    @shapes.body_required
    async def post(self, request):
        data = validated(self.InputSerializer, request.data)
        access = await accounts.token_refresh(refresh=data["refresh"])
        return Response({"success": True, "message": "Token refreshed successfully", "access": access,
                         "access_token": access, "data": {"access_token": access}})


class MeApi(UserApiView):
    """The signed-in account (React Native's HomeScreen greets the user with it)."""

    @extend_schema(responses={200: shapes.envelope_serializer("AccountEnvelope", shapes.account_serializer()),
                              401: shapes.error_envelope()})
    async def get(self, request):
        return ok("User information fetched successfully", await accounts.account_get(user_id=request.user.id))

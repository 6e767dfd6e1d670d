"""Health (anyone) and ping (a token check and nothing else)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from app import serializers as shapes
from app.services import recommendation_service as recs
from app.views.base import AnonymousApiView, UserApiView, ok


class HealthApi(AnonymousApiView):

    @extend_schema(responses={200: shapes.envelope_serializer("HealthEnvelope", shapes.inline_serializer(
        name="Health", fields={
            "status": serializers.CharField(), "neo4j": serializers.CharField(),
            "redis": serializers.ChoiceField(choices=["off", "up", "down"]),
            "models": serializers.DictField(child=serializers.JSONField(allow_null=True)),
            "change_feed": shapes.inline_serializer(name="ChangeFeed", fields={
                "worker": serializers.IntegerField(), "polls": serializers.IntegerField(), "lag_seconds": serializers.FloatField(allow_null=True),
                "followed": serializers.DictField(child=serializers.BooleanField())})}))})
    async def get(self, request):
        return ok("Service is alive", await recs.health_get())


class PingApi(UserApiView):
    """A token check and nothing else: the floor of an authenticated request (the serving benchmark's yardstick)."""

    @extend_schema(responses={200: shapes.envelope_serializer("PingEnvelope", shapes.inline_serializer(
        name="Ping", fields={"username": serializers.CharField()})), 401: shapes.error_envelope()})
    async def get(self, request):
        return ok("pong", {"username": request.user.username})

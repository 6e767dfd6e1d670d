"""The guest discovery endpoints the MusicBud apps call (discover, trending, genres, an item's details): each
validates, awaits one service of app/services/discovery.py and answers in the envelope. No token is read."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from app import serializers as shapes
from app.content_types import CONTENT_TYPES
from app.services import discovery
from app.views.base import GuestCountSerializer, ok, validated
from app.views.query_filters import FILTER_PARAMS, FilterQuerySerializer
from app.views.recommendations_views import GuestApiView

_ERRORS = {400: shapes.error_envelope(), 429: shapes.error_envelope(), 503: shapes.error_envelope()}
_TYPES = ["all"] + [ct.key for ct in CONTENT_TYPES]
_GROUPS = list(dict.fromkeys(discovery.GENRE_GROUPS.values()))  # music, movies, anime


class DiscoverApi(GuestApiView):
    allowed_query_params = frozenset({"n", "limit"})

    class InputSerializer(GuestCountSerializer):
        class Meta:
            ref_name = "DiscoverQuery"

    @extend_schema(parameters=[InputSerializer], responses={
        200: shapes.envelope_serializer("DiscoverEnvelope", shapes.discover_serializer()), **_ERRORS})
    async def get(self, request):
        n = validated(self.InputSerializer, request.query_params)["n"]
        return ok("Discover content fetched successfully", await discovery.discover_overview(n=n))


class TrendingApi(GuestApiView):
    """`type` (Flutter) or `content_type` (React Native): all, or one type; only that type's key is answered
    (and `content`, the same items in one flat list)."""

    allowed_query_params = frozenset({"type", "content_type", "n", "limit"}) | FILTER_PARAMS

    class InputSerializer(FilterQuerySerializer, GuestCountSerializer):
        class Meta:
            ref_name = "TrendingQuery"

        type = serializers.ChoiceField(choices=_TYPES, required=False, help_text="all (the default) or one type.")
        content_type = serializers.ChoiceField(choices=_TYPES, required=False, help_text="Another name for type.")

        def validate(self, attrs):
            attrs = super().validate(attrs)
            kind, content_type = attrs.pop("type", None), attrs.pop("content_type", None)
            if kind is not None and content_type is not None and kind != content_type:
                raise serializers.ValidationError({"content_type": [
                    f"type and content_type are one parameter: {kind} and {content_type} differ; give one of them."]})
            attrs["type"] = kind or content_type or "all"
            return attrs

    @extend_schema(parameters=[InputSerializer], responses={
        200: shapes.envelope_serializer("TrendingEnvelope", shapes.trending_serializer()), **_ERRORS})
    async def get(self, request):
        data = validated(self.InputSerializer, request.query_params)
        result = await discovery.trending_by_type(content_type=data["type"], n=data["n"],
                                                  item_filter=data["item_filter"], diversity=data["diversity"])
        return ok("Trending content fetched successfully", result)


class GenresApi(GuestApiView):
    allowed_query_params = frozenset({"category", "n", "limit"})

    class InputSerializer(GuestCountSerializer):
        class Meta:
            ref_name = "GenresQuery"

        default_n = 20
        category = serializers.ChoiceField(choices=_GROUPS, required=False, help_text="Only this group's genres.")

    @extend_schema(parameters=[InputSerializer], responses={
        200: shapes.envelope_serializer("GenresEnvelope", shapes.genres_serializer(_GROUPS)), **_ERRORS})
    async def get(self, request):
        data = validated(self.InputSerializer, request.query_params)
        result = await discovery.genres_by_group(n=data["n"], group=data.get("category"))
        return ok("Genres fetched successfully", result)


class ContentDetailsApi(GuestApiView):
    """GET /v1/content/public/<type>/<id>/ (Flutter) and /v1/discover/public/<type>/<id>/ (React Native)."""

    @extend_schema(
        parameters=[OpenApiParameter("content_type", str, OpenApiParameter.PATH, enum=list(discovery.DETAIL_TYPES)),
                    OpenApiParameter("item_id", str, OpenApiParameter.PATH)],
        responses={200: shapes.envelope_serializer("ContentDetailsEnvelope", serializers.DictField(
            child=serializers.JSONField(allow_null=True), help_text="The item's details, image_url, image, "
            "cover_url (tracks: artist, duration; artists: genre).")),
            404: shapes.error_envelope(), **_ERRORS})
    async def get(self, request, content_type: str, item_id: str):
        details = await discovery.content_details(content_type=content_type, item_id=item_id)
        return ok(f"{content_type.capitalize()} details fetched successfully", details)

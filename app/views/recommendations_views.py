"""The recommendation endpoints: each view validates, awaits one service of
app/services/recommendation_service.py and answers in the envelope."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from app import serializers as shapes
from app.content_types import ALL_KEYS, BY_KEY, BY_MODEL_KEY, CONTENT_TYPES, ContentType, content_type_get
from app.errors import InvalidContentTypeError
from app.services import recommendation_service as recs
from app.views.query_filters import FILTER_PARAMS, YEAR_PARAMS, FilterQuerySerializer, YearQuerySerializer
from app.views.base import (
    AnonymousApiView,
    GuestCountSerializer,
    SharedAnonThrottle,
    UserApiView,
    WholeNumberField,
    ok,
    validated,
)


class CountSerializer(serializers.Serializer):
    n = WholeNumberField(min_value=1, max_value=100, default=20)


class FilteredCountSerializer(CountSerializer, FilterQuerySerializer):
    """n, the filters and diversity (app/views/query_filters.py)."""


class YearFilteredCountSerializer(CountSerializer, YearQuerySerializer):
    """The same with year_min / year_max (a type whose items have a year)."""


def query_serializer(ct: ContentType):
    return YearFilteredCountSerializer if ct.has_years else FilteredCountSerializer


def query_params(ct: ContentType | None) -> frozenset[str]:
    """The query parameters of a type's recommendation and similar endpoints."""
    return frozenset({"n"}) | FILTER_PARAMS | (YEAR_PARAMS if ct is None or ct.has_years else frozenset())


_ERRORS = {400: shapes.error_envelope(), 401: shapes.error_envelope(), 404: shapes.error_envelope(),
           503: shapes.error_envelope()}


MODEL_VERSION_HEADER = "X-Model-Version"
_MODEL_VERSION = OpenApiParameter(
    MODEL_VERSION_HEADER, str, OpenApiParameter.HEADER, response=[200],
    description="The version of the model that ranked every item of this answer (absent when no model is trained "
                "and popular items come from the graph).")
EXPERIMENT_HEADER = "X-Experiment"
_EXPERIMENT = OpenApiParameter(
    EXPERIMENT_HEADER, str, OpenApiParameter.HEADER, response=[200],
    description="`<experiment>:<arm>` when an A/B experiment runs on this type: the arm whose model ranked this "
                "answer (the user's arm, a stable hash of user and experiment). Absent otherwise.")
_EXPERIMENTS = OpenApiParameter(
    EXPERIMENT_HEADER, str, OpenApiParameter.HEADER, response=[200],
    description="`<experiment>:<arm>` of each type of the answer served in a running A/B experiment, separated by "
                "', '. Absent when none is.")


class RecommendationsApi(UserApiView):
    allowed_query_params = frozenset({"n", "diversity"})

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AllRecommendationsQuery"

        n = WholeNumberField(min_value=1, max_value=100, default=10)
        diversity = serializers.FloatField(
            min_value=0.0, max_value=1.0, default=0.0, help_text="As for one type (0, the default: as ranked).")

    @extend_schema(parameters=[InputSerializer, _EXPERIMENTS], responses={
        200: shapes.envelope_serializer("AllRecommendationsEnvelope", shapes.all_recommendations_serializer()),
        **_ERRORS})
    async def get(self, request):
        query = validated(self.InputSerializer, request.query_params)
        data = await recs.recommendations_all_for_user(username=request.user.username, n=query["n"],
                                                       diversity=query["diversity"])
        response = ok("Recommendations fetched successfully", data)
        if data.experiments:
            response[EXPERIMENT_HEADER] = ", ".join(data.experiments)
        return response


class RecommendationsByTypeApi(UserApiView):
    """GET /v1/recommendations/<type>/ for one type; one subclass per row of the table (exact schemas)."""

    allowed_query_params = query_params(None)
    content_type: ContentType | None = None  # None: the catch-all that answers 400 for unknown types

    @extend_schema(exclude=True)
    async def get(self, request, type_key: str | None = None):
        key = self.content_type.key if self.content_type else recommendation_type(type_key)
        data = validated(query_serializer(self.content_type or content_type_get(key=key)), request.query_params)
        answer = await recs.recommendations_for_user(username=request.user.username, content_type=key, n=data["n"],
                                                     item_filter=data["item_filter"], diversity=data["diversity"])
        response = ok(f"{key.capitalize()} recommendations fetched successfully", answer.json)
        if answer.model_version:
            response[MODEL_VERSION_HEADER] = answer.model_version
        if answer.experiment:
            response[EXPERIMENT_HEADER] = answer.experiment
        return response


def recommendation_type(key: str) -> str:
    """A type of GET /v1/recommendations/<type>/ (an API key, or the model key "movie" for "movies"); 400 as the
    original backend answered, naming the valid types, for any other (buds has a view of its own)."""
    if key in BY_KEY or key in BY_MODEL_KEY:
        return key
    raise InvalidContentTypeError(f"Invalid recommendation type: {key}. Valid types: {list(ALL_KEYS)}")


class BudsApi(UserApiView):
    allowed_query_params = frozenset({"n"})

    @extend_schema(parameters=[CountSerializer], responses={
        200: shapes.envelope_serializer("BudsEnvelope", shapes.bud_serializer(many=True)), **_ERRORS})
    async def get(self, request):
        n = validated(CountSerializer, request.query_params)["n"]
        answer = await recs.buds_for_user(username=request.user.username, n=n)
        return ok("Buds recommendations fetched successfully", answer.json)


class SimilarItemsApi(UserApiView):
    allowed_query_params = query_params(None)
    content_type: ContentType | None = None

    @extend_schema(exclude=True)
    async def get(self, request, item_id: str, type_key: str | None = None):
        key = self.content_type.key if self.content_type else type_key
        ct = self.content_type or BY_KEY.get(key) or BY_MODEL_KEY.get(key)
        query = validated(query_serializer(ct) if ct is not None else FilteredCountSerializer, request.query_params)
        data = await recs.similar_items(content_type=key, item_id=item_id, n=query["n"],
                                        item_filter=query["item_filter"], diversity=query["diversity"])
        return ok(f"Items similar to {item_id} fetched successfully", data)


def _typed_view(base, ct: ContentType, *, similar: bool = False):
    """A subclass of `base` bound to one content type, with its exact OpenAPI schema."""
    item = shapes.item_serializer(ct, with_similarity=similar, many=True)
    name = f"{ct.label}{'Similar' if similar else 'Recommendations'}Envelope"

    async def get(self, request, *args, **kwargs):
        return await base.get(self, request, *args, **kwargs)

    get = extend_schema(
        operation_id=f"{ct.key}_{'similar' if similar else 'recommendations'}",
        parameters=[query_serializer(ct)] if similar else [query_serializer(ct), _MODEL_VERSION, _EXPERIMENT],
        responses={200: shapes.envelope_serializer(name, item), **_ERRORS},
    )(get)
    return type(f"{ct.label}{base.__name__}", (base,), {"content_type": ct, "get": get,
                                                       "allowed_query_params": query_params(ct)})


TYPED_RECOMMENDATION_VIEWS = {ct.key: _typed_view(RecommendationsByTypeApi, ct) for ct in CONTENT_TYPES}
TYPED_SIMILAR_VIEWS = {ct.key: _typed_view(SimilarItemsApi, ct, similar=True) for ct in CONTENT_TYPES}


class IsStaff(BasePermission):
    """Staff as the auth database says now (not as the token said when it was issued)."""

    message = "Only staff can do this."

    def has_permission(self, request, view) -> bool:
        user_id = getattr(request.user, "id", None)
        if user_id is None:
            return False
        return get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).exists()


class TrainModelsApi(UserApiView):
    """Start a training job (its own process, never a serving worker's thread). By default the call waits for it
    and answers {model key: trained}, as the seed's endpoint did; `?wait=false` answers 202 with the job at once
    (follow it at train/models/status/)."""

    permission_classes = [IsStaff]
    initial_in_thread = True  # the staff check reads the database
    allowed_query_params = frozenset({"wait"})

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TrainQuery"

        wait = serializers.BooleanField(default=True)

    @extend_schema(request=None, parameters=[InputSerializer], responses={
        200: shapes.envelope_serializer("TrainingEnvelope", serializers.DictField(child=serializers.BooleanField())),
        202: shapes.envelope_serializer("TrainingJobEnvelope", shapes.training_status_serializer()),
        401: shapes.error_envelope(), 403: shapes.error_envelope(), 409: shapes.error_envelope(),
        503: shapes.error_envelope()})
    async def post(self, request):
        wait = validated(self.InputSerializer, request.query_params)["wait"]
        result = await recs.training_job_run(wait=wait)
        if not wait:
            return ok("Model training started", result, status_code=202)
        return ok("Model training completed", result)


class TrainingStatusApi(UserApiView):
    permission_classes = [IsStaff]
    initial_in_thread = True

    @extend_schema(responses={200: shapes.envelope_serializer("TrainingStatusEnvelope",
                                                              shapes.training_status_serializer()),
                              401: shapes.error_envelope(), 403: shapes.error_envelope()})
    async def get(self, request):
        return ok("Training status fetched successfully", await recs.training_status_aget())


class GuestThrottle(SharedAnonThrottle):
    scope = "guest"


class GuestApiView(AnonymousApiView):
    """Open to anyone (a token, or a bad Authorization header such as `Bearer null`, is not read), throttled per
    client address."""

    throttle_classes = [GuestThrottle]
    initial_in_thread = True  # the throttle's count is file I/O


class PublicRecommendationsApi(GuestApiView):
    """Popular items, always keyed by type (`?type=movies` answers `data.movies`), plus `data.content` (all of
    them in one flat list) and `is_personalized: false`, as the MusicBud apps read them."""

    allowed_query_params = frozenset({"type", "n", "limit", "sort"}) | FILTER_PARAMS | YEAR_PARAMS

    class InputSerializer(YearQuerySerializer, GuestCountSerializer):
        class Meta:
            ref_name = "PublicQuery"

        type = serializers.ChoiceField(choices=["all"] + [ct.key for ct in CONTENT_TYPES], default="all")
        sort = serializers.ChoiceField(choices=list(recs.SORTS), default="popular", help_text=(
            "popular (the default): all-time popularity; trending: time-decayed popularity (a like counts half as "
            "much a half-life later, MUSICBUD_TRENDING_HALF_LIFE_HOURS, one week), popular items after them."))

        def validate(self, attrs):
            attrs = super().validate(attrs)
            years = attrs["item_filter"].year_min is not None or attrs["item_filter"].year_max is not None
            if years and not (attrs["type"] in BY_KEY and BY_KEY[attrs["type"]].has_years):
                with_years = [ct.key for ct in CONTENT_TYPES if ct.has_years]
                raise serializers.ValidationError({"year_min": [
                    f"year_min and year_max apply to {', '.join(with_years)} only: give type={with_years[0]}."]})
            return attrs

    @extend_schema(parameters=[InputSerializer], responses={
        200: shapes.inline_serializer(name="PublicEnvelope", fields={
            "success": serializers.BooleanField(), "message": serializers.CharField(),
            "data": shapes.public_recommendations_serializer(), "is_personalized": serializers.BooleanField()}),
        400: shapes.error_envelope(), 429: shapes.error_envelope(), 503: shapes.error_envelope()})
    async def get(self, request):
        data = validated(self.InputSerializer, request.query_params)
        result = await recs.popular_items_by_type(content_type=data["type"], n=data["n"], sort=data["sort"],
                                                  item_filter=data["item_filter"], diversity=data["diversity"])
        return Response({"success": True, "message": "Popular items fetched successfully", "data": result,
                         "is_personalized": False})


class SeedBaselineRecommendationsApi(UserApiView):
    """The seed's per-request design (bench only: mounted when MUSICBUD_BENCH_BASELINE is set)."""

    allowed_query_params = frozenset({"n"})

    @extend_schema(exclude=True)
    async def get(self, request, type_key: str):
        from app.services.seed_baseline import recommendations_seed_design

        n = validated(CountSerializer, request.query_params)["n"]
        data = await recommendations_seed_design(username=request.user.username, content_type=type_key, n=n)
        return ok(f"{type_key.capitalize()} recommendations fetched successfully", data)

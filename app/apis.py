"""The HTTP API: one short async view per operation (validate, await one service, answer in the envelope).

Recommendation views authenticate statelessly (the JWT's signature and expiry, no database query) and do
their DRF bookkeeping on the event loop; views that need the database (login, training's staff check) do it
in a worker thread.
"""
from __future__ import annotations

import asyncio
import logging

from adrf.views import APIView as AsyncAPIView
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import caches
from django.core.exceptions import RequestDataTooBig
from django.core.validators import RegexValidator
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from app import serializers as shapes
from app.authentication import CachedJWTStatelessUserAuthentication
from app.content_types import BUDS_KEY, CONTENT_TYPES, ContentType
from app.errors import ApplicationError, AuthenticationError
from app.services import recommendation_service as recs

logger = logging.getLogger(__name__)


def ok(message: str, data, status_code: int = status.HTTP_200_OK) -> Response:
    return Response({"success": True, "message": message, "data": data}, status=status_code)


def _rendered(response: Response) -> HttpResponse:
    """The DRF response rendered here, as a plain HttpResponse: on the async path Django renders a template
    response (DRF's Response is one) behind a thread hop, which costs more than the rendering itself."""
    response.render()
    plain = HttpResponse(response.content, status=response.status_code)
    for header, value in response.items():
        plain[header] = value
    plain.cookies = response.cookies
    return plain


class ApiView(AsyncAPIView):
    """adrf's APIView, minus a thread hop: `initial` (auth, permissions, throttles) runs on the event loop
    when every piece of it is in-memory; set `initial_in_thread` where it touches the database or files."""

    initial_in_thread = False
    allowed_query_params: frozenset[str] = frozenset()

    async def async_dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self._check_body_size(request)
            handler = getattr(self, request.method.lower(), None) if request.method.lower() in self.http_method_names else None
            if handler is None:  # 405 for a method the view lacks, whoever asks (not 401/403 first)
                self.http_method_not_allowed(request, *args, **kwargs)
            if self.initial_in_thread:
                await sync_to_async(self.initial, thread_sensitive=False)(request, *args, **kwargs)
            else:
                self.initial(request, *args, **kwargs)
            self._check_query_params(request)
            response = await handler(request, *args, **kwargs) if asyncio.iscoroutinefunction(handler) \
                else handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return _rendered(self.response)

    @staticmethod
    def _check_body_size(request) -> None:
        """413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE: DRF's parsers read the request stream themselves, past
        the check Django makes only in HttpRequest.body."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise RequestDataTooBig(f"The request body is larger than {limit} bytes.")

    def _check_query_params(self, request) -> None:
        unknown = sorted(set(request.query_params) - self.allowed_query_params)
        if unknown:
            allowed = ", ".join(sorted(self.allowed_query_params)) or "none"
            raise ApplicationError(f"Unknown query parameter(s): {', '.join(unknown)}. Allowed: {allowed}.")
        blank = sorted(key for key, values in request.query_params.lists() if "" in values)
        if blank:  # `?n=` would otherwise mean the default: a client that sends a parameter means a value
            raise serializers.ValidationError({key: ["A value is required when the parameter is given."]
                                               for key in blank})


class UserApiView(ApiView):
    authentication_classes = [CachedJWTStatelessUserAuthentication]


class AnonymousApiView(ApiView):
    """Open to anyone, no token read: login, token refresh, the guest endpoint, health."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class SharedAnonThrottle(AnonRateThrottle):
    """Per client address, counted in a file-based cache that every worker process shares (a view using one
    sets initial_in_thread: the count is file I/O)."""

    cache = caches["throttle"]


# DRF refuses a NUL character in any CharField (400); this pattern says so in the schema.
NO_NUL = RegexValidator(r"^[^\x00]*$", "Null characters are not allowed.")


_DEFAULTS: dict[type, dict] = {}


def _validated(serializer_class, data) -> dict:
    if not data and serializer_class in _DEFAULTS:  # no parameters: the defaults, known from the first time
        return dict(_DEFAULTS[serializer_class])
    s = serializer_class(data=data)
    s.is_valid(raise_exception=True)
    if not data:
        _DEFAULTS[serializer_class] = dict(s.validated_data)
    return s.validated_data


# --- auth -------------------------------------------------------------------------------------------------

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
        data = _validated(self.InputSerializer, request.data)
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
        data = _validated(self.InputSerializer, request.data)
        # simplejwt checks the user is still active: a database read, so off the event loop
        refreshed = await asyncio.to_thread(_validated, TokenRefreshSerializer, {"refresh": data["refresh"]})
        return ok("Token refreshed successfully", {"access_token": refreshed["access"]})


# --- recommendations --------------------------------------------------------------------------------------

class CountSerializer(serializers.Serializer):
    n = serializers.IntegerField(min_value=1, max_value=100, default=20)


_ERRORS = {400: shapes.error_envelope(), 401: shapes.error_envelope(), 404: shapes.error_envelope(),
           503: shapes.error_envelope()}


class RecommendationsApi(UserApiView):
    allowed_query_params = frozenset({"n"})

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AllRecommendationsQuery"

        n = serializers.IntegerField(min_value=1, max_value=100, default=10)

    @extend_schema(parameters=[InputSerializer], responses={
        200: shapes.envelope_serializer("AllRecommendationsEnvelope", shapes.all_recommendations_serializer()),
        **_ERRORS})
    async def get(self, request):
        n = _validated(self.InputSerializer, request.query_params)["n"]
        data = await asyncio.to_thread(recs.recommendations_all_for_user, username=request.user.username, n=n)
        return ok("Recommendations fetched successfully", data)


MODEL_VERSION_HEADER = "X-Model-Version"
_MODEL_VERSION = OpenApiParameter(
    MODEL_VERSION_HEADER, str, OpenApiParameter.HEADER, response=[200],
    description="The version of the model that ranked every item of this answer (absent when no model is trained "
                "and popular items come from the graph).")


class RecommendationsByTypeApi(UserApiView):
    """GET /v1/recommendations/<type>/ for one type; one subclass per row of the table (exact schemas)."""

    allowed_query_params = frozenset({"n"})
    content_type: ContentType | None = None  # None: the catch-all that answers 404 for unknown types

    @extend_schema(exclude=True)
    async def get(self, request, type_key: str | None = None):
        key = self.content_type.key if self.content_type else type_key
        n = _validated(CountSerializer, request.query_params)["n"]
        # in memory (cached JSON, or sub-millisecond numpy) on the loop; what may read a file or Neo4j in a thread
        answer = recs.recommendations_json_in_memory_for_user(username=request.user.username, content_type=key,
                                                              n=n)
        if answer is None:
            answer = await asyncio.to_thread(recs.recommendations_versioned_for_user,
                                             username=request.user.username, content_type=key, n=n)
        data, version = answer
        response = ok(f"{key.capitalize()} recommendations fetched successfully", data)
        if version:
            response[MODEL_VERSION_HEADER] = version
        return response


class BudsApi(UserApiView):
    allowed_query_params = frozenset({"n"})

    @extend_schema(parameters=[CountSerializer], responses={
        200: shapes.envelope_serializer("BudsEnvelope", shapes.bud_serializer(many=True)), **_ERRORS})
    async def get(self, request):
        n = _validated(CountSerializer, request.query_params)["n"]
        data = await asyncio.to_thread(recs.buds_json_for_user, username=request.user.username, n=n)
        return ok("Buds recommendations fetched successfully", data)


class SimilarItemsApi(UserApiView):
    allowed_query_params = frozenset({"n"})
    content_type: ContentType | None = None

    @extend_schema(exclude=True)
    async def get(self, request, item_id: str, type_key: str | None = None):
        key = self.content_type.key if self.content_type else type_key
        n = _validated(CountSerializer, request.query_params)["n"]
        data = await asyncio.to_thread(recs.similar_items, content_type=key, item_id=item_id, n=n)
        return ok(f"Items similar to {item_id} fetched successfully", data)


def _typed_view(base, ct: ContentType, *, similar: bool = False):
    """A subclass of `base` bound to one content type, with its exact OpenAPI schema."""
    item = shapes.item_serializer(ct, with_similarity=similar, many=True)
    name = f"{ct.label}{'Similar' if similar else 'Recommendations'}Envelope"

    async def get(self, request, *args, **kwargs):
        return await base.get(self, request, *args, **kwargs)

    get = extend_schema(
        operation_id=f"{ct.key}_{'similar' if similar else 'recommendations'}",
        parameters=[CountSerializer] if similar else [CountSerializer, _MODEL_VERSION],
        responses={200: shapes.envelope_serializer(name, item), **_ERRORS},
    )(get)
    return type(f"{ct.label}{base.__name__}", (base,), {"content_type": ct, "get": get})


TYPED_RECOMMENDATION_VIEWS = {ct.key: _typed_view(RecommendationsByTypeApi, ct) for ct in CONTENT_TYPES}
TYPED_SIMILAR_VIEWS = {ct.key: _typed_view(SimilarItemsApi, ct, similar=True) for ct in CONTENT_TYPES}


class IsStaff(BasePermission):
    """Staff as the auth database says now (not as the token said when it was issued)."""

    message = "Only staff can do this."

    def has_permission(self, request, view) -> bool:
        from django.contrib.auth import get_user_model

        user_id = getattr(request.user, "id", None)
        if user_id is None:
            return False
        return get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).exists()


class TrainModelsApi(UserApiView):
    permission_classes = [IsStaff]
    initial_in_thread = True  # the staff check reads the database

    @extend_schema(request=None, responses={
        200: shapes.envelope_serializer("TrainingEnvelope", serializers.DictField(child=serializers.BooleanField())),
        401: shapes.error_envelope(), 403: shapes.error_envelope(), 409: shapes.error_envelope(),
        503: shapes.error_envelope()})
    async def post(self, request):
        results = await asyncio.to_thread(recs.models_train)
        return ok("Model training completed", results)


class GuestThrottle(SharedAnonThrottle):
    scope = "guest"


class PublicRecommendationsApi(AnonymousApiView):
    throttle_classes = [GuestThrottle]
    initial_in_thread = True
    allowed_query_params = frozenset({"type", "n"})

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PublicQuery"

        type = serializers.ChoiceField(choices=["all"] + [ct.key for ct in CONTENT_TYPES], default="all")
        n = serializers.IntegerField(min_value=1, max_value=100, default=10)

    @extend_schema(parameters=[InputSerializer], responses={
        200: shapes.envelope_serializer("PublicEnvelope", serializers.JSONField()),
        400: shapes.error_envelope(), 429: shapes.error_envelope(), 503: shapes.error_envelope()})
    async def get(self, request):
        data = _validated(self.InputSerializer, request.query_params)
        if data["type"] == "all":
            result = {ct.key: await asyncio.to_thread(recs.popular_items, content_type=ct.key, n=data["n"])
                      for ct in CONTENT_TYPES}
        else:
            result = await asyncio.to_thread(recs.popular_items, content_type=data["type"], n=data["n"])
        return ok("Popular items fetched successfully", result)


class HealthApi(AnonymousApiView):

    @extend_schema(responses={200: shapes.envelope_serializer("HealthEnvelope", shapes.inline_serializer(
        name="Health", fields={
            "status": serializers.CharField(), "neo4j": serializers.CharField(),
            "models": serializers.DictField(child=serializers.JSONField(allow_null=True))}))})
    async def get(self, request):
        data = await asyncio.to_thread(recs.health)
        return ok("Service is alive", data)


class SeedBaselineRecommendationsApi(UserApiView):
    """The seed's per-request design (bench only: mounted when MUSICBUD_BENCH_BASELINE is set)."""

    allowed_query_params = frozenset({"n"})

    @extend_schema(exclude=True)
    async def get(self, request, type_key: str):
        from app.services.seed_baseline import recommendations_seed_design

        n = _validated(CountSerializer, request.query_params)["n"]
        data = await asyncio.to_thread(recommendations_seed_design, username=request.user.username,
                                       content_type=type_key, n=n)
        return ok(f"{type_key.capitalize()} recommendations fetched successfully", data)


class PingApi(UserApiView):
    """A token check and nothing else: the floor of an authenticated request (the serving benchmark's yardstick)."""

    @extend_schema(responses={200: shapes.envelope_serializer("PingEnvelope", shapes.inline_serializer(
        name="Ping", fields={"username": serializers.CharField()})), 401: shapes.error_envelope()})
    async def get(self, request):
        return ok("pong", {"username": request.user.username})


__all__ = [name for name in dir() if name.endswith("Api")] + ["BUDS_KEY"]

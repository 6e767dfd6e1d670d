"""The base views every operation subclasses, and what they share: the envelope, input validation, the
query-parameter and body-size checks, the throttle that counts across worker processes.

Recommendation views authenticate statelessly (the JWT's signature and expiry, no database query) and do
their DRF bookkeeping on the event loop; views that need the database (login, training's staff check) or a
file (the shared throttle) set `initial_in_thread` (musicbud/lean.py)."""
from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from app.authentication import CachedJWTStatelessUserAuthentication
from app.errors import ApplicationError
from app.services.shared_state import throttle_cache
from musicbud.lean import LeanAPIView


def ok(message: str, data, status_code: int = status.HTTP_200_OK) -> Response:
    return Response({"success": True, "message": message, "data": data}, status=status_code)


class ApiView(LeanAPIView):
    """A request's body is refused (413) before anything else when too large; its query parameters must all
    be known (allowed_query_params) and have values."""

    allowed_query_params: frozenset[str] = frozenset()

    def check_request(self, request) -> None:
        """413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE: DRF's parsers read the request stream themselves, past
        the check Django makes only in HttpRequest.body."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise RequestDataTooBig(f"The request body is larger than {limit} bytes.")

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self._check_query_params(request)

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


class SharedThrottleCache:
    """A throttle counted in a cache that every worker process shares, and every host with REDIS_URL
    (app/services/shared_state.py; a view using one sets initial_in_thread: the count is file or network I/O)."""

    cache = throttle_cache


class SharedAnonThrottle(SharedThrottleCache, AnonRateThrottle):
    """Per client address, across worker processes."""


# DRF refuses a NUL character in any CharField (400); this pattern says so in the schema.
NO_NUL = RegexValidator(r"^[^\x00]*$", "Null characters are not allowed.")
# A CharField that trims (DRF's default) refuses a value of whitespace only as blank (400): this pattern says that
# too (a character that is neither NUL nor whitespace, as Python counts whitespace: U+001C-U+001F among it).
NOT_BLANK = RegexValidator(r"^[^\x00]*[^\x00\s\x1c-\x1f\x85][^\x00]*$",
                           "This field may not be blank or hold null characters.")


class WholeNumberField(serializers.IntegerField):
    """An integer input as the schema states it: "12", never "12.0", which DRF's IntegerField accepts (it strips a
    trailing ".0": a schema-violating value answered 200, the full fuzz's ST201)."""

    re_decimal = re.compile(r"(?!)")  # matches nothing: nothing is stripped before int()


class GuestCountSerializer(serializers.Serializer):
    """How many items: `n`, or `limit` (the React Native app's name for it), 1 to 100; giving both with
    different values is a 400 naming both. Validated data: {"n"} (default_n when neither is given)."""

    default_n = 10

    n = WholeNumberField(min_value=1, max_value=100, required=False, help_text="How many items (default 10).")
    limit = WholeNumberField(min_value=1, max_value=100, required=False, help_text="Another name for n.")

    def validate(self, attrs):
        n, limit = attrs.pop("n", None), attrs.pop("limit", None)
        if n is not None and limit is not None and n != limit:
            raise serializers.ValidationError(
                {"limit": [f"n and limit are one parameter: n={n} and limit={limit} differ; give one of them."]})
        attrs["n"] = n if n is not None else limit if limit is not None else self.default_n
        return attrs


_DEFAULTS: dict[type, dict] = {}


def validated(serializer_class, data) -> dict:
    """The serializer's validated data (400 in the envelope otherwise); no parameters at all give the defaults,
    known from the first time."""
    if not data and serializer_class in _DEFAULTS:
        return dict(_DEFAULTS[serializer_class])
    s = serializer_class(data=data)
    s.is_valid(raise_exception=True)
    if not data:
        _DEFAULTS[serializer_class] = dict(s.validated_data)
    return s.validated_data


def path_alias(view: type[ApiView], *, operation: str) -> type[ApiView]:
    """`view` for one more path (the apps call some paths without the trailing slash, or by another name; a
    POST is never redirected): a subclass that answers the same, whose operations are named `<operation>_<method>`
    in the schema (drf-spectacular names operations after the path, so `/v1/x` would collide with `/v1/x/`)."""

    def alias(handler):
        async def aliased(self, request, *args, **kwargs):
            return await handler(self, request, *args, **kwargs)

        if hasattr(handler, "kwargs"):  # the original's schema, extended (never altered)
            aliased.kwargs = dict(handler.kwargs)
        return aliased

    methods = {method: extend_schema(operation_id=f"{operation}_{method}")(alias(getattr(view, method)))
               for method in ("get", "post") if hasattr(view, method)}
    name = "".join(part.capitalize() for part in operation.split("_"))
    return type(f"{view.__name__}As{name}", (view,), methods)

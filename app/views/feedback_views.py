"""POST /v1/recommendations/feedback/: what a user did with recommendations (dismiss, click, impression)."""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.throttling import UserRateThrottle

from app import serializers as shapes
from app.content_types import CONTENT_TYPES, content_type_get
from app.services.feedback import EVENTS, MAX_BATCH, FeedbackEvent, feedback_record
from app.views.base import NO_NUL, SharedThrottleCache, UserApiView, ok


class FeedbackThrottle(SharedThrottleCache, UserRateThrottle):
    """Per user (the token's user id), counted across worker processes."""

    scope = "feedback"


class FeedbackEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[ct.key for ct in CONTENT_TYPES])
    item_id = serializers.CharField(max_length=200, trim_whitespace=False, validators=[NO_NUL])
    event = serializers.ChoiceField(choices=list(EVENTS))


class BatchSchema(AutoSchema):
    """The schema of a list request body that says how long the list may be (drf-spectacular leaves a
    ListSerializer's min_length / max_length out)."""

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        if isinstance(schema, dict) and schema.get("type") == "array":
            schema = {**schema, "minItems": 1, "maxItems": MAX_BATCH}
        return schema, required


class FeedbackApi(UserApiView):
    schema = BatchSchema()
    throttle_classes = [FeedbackThrottle]
    initial_in_thread = True  # the shared throttle counts in a file

    @extend_schema(
        request=FeedbackEventSerializer(many=True, min_length=1, max_length=MAX_BATCH),
        description=f"One event, or a JSON list of at most {MAX_BATCH}. `dismiss`: never recommend the item to this "
                    "user again (and it is no positive of theirs at the next training); `click`, `impression`: "
                    "counted, for measuring recommendations. Stored whole or not at all.",
        responses={200: shapes.envelope_serializer("FeedbackEnvelope", shapes.inline_serializer(
            name="FeedbackCounts", fields={event: serializers.IntegerField() for event in EVENTS})),
            400: shapes.error_envelope(), 401: shapes.error_envelope(), 404: shapes.error_envelope(),
            429: shapes.error_envelope()})
    async def post(self, request):
        events = _validated_events(request.data)
        counts = await feedback_record(username=request.user.username, events=events)
        return ok("Feedback recorded", counts)


def _validated_events(body) -> list[FeedbackEvent]:
    rows = body if isinstance(body, list) else [body]
    if not rows or len(rows) > MAX_BATCH:
        raise serializers.ValidationError({"events": [f"Send one event or a list of 1 to {MAX_BATCH} events."]})
    s = FeedbackEventSerializer(data=rows, many=True)
    s.is_valid(raise_exception=True)
    return [FeedbackEvent(content_type=content_type_get(key=row["type"]), item_id=row["item_id"], event=row["event"])
            for row in s.validated_data]

"""Output shapes of the API, built from the content-type table so every type documents its own items."""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from app.content_types import BUDS_KEY, BY_KEY, CONTENT_TYPES, ContentType

# The type of each detail property the table names (one place; a new property gets a line here).
_PROPERTY_FIELDS = {
    "title": lambda: serializers.CharField(allow_null=True),
    "name": lambda: serializers.CharField(allow_null=True),
    "year": lambda: serializers.IntegerField(allow_null=True),
    "rating": lambda: serializers.FloatField(allow_null=True),
    "score": lambda: serializers.FloatField(allow_null=True),
    "genres": lambda: serializers.ListField(child=serializers.CharField(), allow_null=True),
    "artists": lambda: serializers.ListField(child=serializers.CharField(), allow_null=True),
    "plot": lambda: serializers.CharField(allow_null=True),
    "synopsis": lambda: serializers.CharField(allow_null=True),
    "director": lambda: serializers.CharField(allow_null=True),
    "image_url": lambda: serializers.CharField(allow_null=True),
    "episodes": lambda: serializers.IntegerField(allow_null=True),
    "type": lambda: serializers.CharField(allow_null=True),
    "album": lambda: serializers.CharField(allow_null=True),
    "duration_ms": lambda: serializers.IntegerField(allow_null=True),
    "popularity": lambda: serializers.IntegerField(allow_null=True),
    "release_year": lambda: serializers.IntegerField(allow_null=True),
    "release_date": lambda: serializers.CharField(allow_null=True),
    "status": lambda: serializers.CharField(allow_null=True),
    "artist": lambda: serializers.CharField(allow_null=True),
    "spotify_id": lambda: serializers.CharField(allow_null=True),
    "main_picture": lambda: inline_serializer(name="MainPicture", many=True, fields={
        "medium": serializers.CharField(allow_null=True), "large": serializers.CharField(allow_null=True)}),
    "images": lambda: inline_serializer(name="Image", many=True, fields={
        "url": serializers.CharField(allow_null=True), "height": serializers.IntegerField(allow_null=True),
        "width": serializers.IntegerField(allow_null=True)}),
}


_COMPONENTS: dict[str, type[serializers.Serializer]] = {}


def inline_serializer(*, name: str, fields: dict, **kwargs) -> serializers.Serializer:
    """Like drf-spectacular's, but one class per component name (the schema sees one identity per name)."""
    cls = _COMPONENTS.get(name)
    if cls is None:
        cls = _COMPONENTS[name] = type(name, (serializers.Serializer,), dict(fields))
    return cls(**kwargs)


def _because_serializer(ct: ContentType, **kwargs):
    return inline_serializer(
        name=f"{ct.label}Because",
        fields={"id": serializers.CharField(), ct.title_property: serializers.CharField(allow_null=True)},
        **kwargs,
    )


def item_serializer(ct: ContentType, *, with_similarity: bool = False, **kwargs):
    fields = {"id": serializers.CharField()}
    fields.update({p: _PROPERTY_FIELDS[p]() for p in ct.detail_properties})
    if with_similarity:
        fields["similarity"] = serializers.FloatField()
        name = f"{ct.label}Similar"
    else:
        fields["recommendation_score"] = serializers.FloatField()
        fields["reason"] = serializers.ChoiceField(choices=["personalised", "cross_domain", "trending", "popular"])
        fields["because"] = _because_serializer(ct, many=True)
        name = f"{ct.label}Recommendation"
    return inline_serializer(name=name, fields=fields, **kwargs)


def bud_serializer(**kwargs):
    bud_fields = {"uid": serializers.CharField(), "username": serializers.CharField()}
    return inline_serializer(
        **kwargs,
        name="Bud",
        fields={
            "id": serializers.CharField(),
            "uid": serializers.CharField(help_text="The same as id (the apps read uid)."),
            "username": serializers.CharField(),
            "similarity": serializers.FloatField(min_value=0.0, max_value=1.0),
            "similarity_score": serializers.FloatField(min_value=0.0, max_value=1.0,
                                                       help_text="The same as similarity (the apps' name)."),
            "bud": inline_serializer(name="BudPerson", fields=bud_fields),
            "shared": serializers.DictField(
                child=inline_serializer(name="SharedItem", fields={
                    "id": serializers.CharField(), "title": serializers.CharField(allow_null=True)}, many=True)),
            **{f"common_{key}_count": serializers.IntegerField(
                min_value=0, help_text=f"How many {key} both have (all of them, not only those in shared).")
               for key in ("artists", "tracks", "genres")},
        },
    )


def content_item_serializer(**kwargs):
    """An item of a flat list of several types (data.content)."""
    return inline_serializer(name="ContentItem", fields={
        "id": serializers.CharField(),
        "type": serializers.ChoiceField(choices=[ct.model_key for ct in CONTENT_TYPES]),
        "title": serializers.CharField(allow_null=True), "name": serializers.CharField(allow_null=True),
        "cover": serializers.CharField(allow_null=True, help_text="The item's image_url."),
        "artist": serializers.CharField(allow_null=True)}, **kwargs)


def guest_item_serializer(ct: ContentType, **kwargs):
    """A popular item as the guest screens read it (app/services/item_shapes.py: guest_item_json)."""
    fields = {"id": serializers.CharField()}
    fields.update({p: _PROPERTY_FIELDS[p]() for p in ct.detail_properties})
    fields["image_url"] = serializers.CharField(allow_null=True)
    fields["image"] = serializers.CharField(allow_null=True, help_text="The same as image_url.")
    if ct.model_key == "track":
        fields["artist"] = serializers.CharField(allow_null=True, help_text="The first of artists.")
        fields["duration"] = serializers.CharField(allow_null=True, help_text='duration_ms as "m:ss".')
    elif ct.model_key == "artist":
        fields["genre"] = serializers.CharField(allow_null=True, help_text="The first of genres.")
    fields["recommendation_score"] = serializers.FloatField()
    fields["reason"] = serializers.ChoiceField(choices=["personalised", "cross_domain", "trending", "popular"])
    fields["because"] = _because_serializer(ct, many=True)
    return inline_serializer(name=f"{ct.label}GuestItem", fields=fields, **kwargs)


def genre_serializer(**kwargs):
    return inline_serializer(name="Genre", fields={
        "id": serializers.CharField(help_text="The name's slug."), "name": serializers.CharField(),
        "color": serializers.RegexField(r"^#[0-9A-F]{6}$", help_text="#RRGGBB, the same for a name every time.")},
        **kwargs)


def public_recommendations_serializer():
    fields = {ct.key: item_serializer(ct, many=True, required=False) for ct in CONTENT_TYPES}
    fields["content"] = content_item_serializer(many=True)
    return inline_serializer(name="PublicRecommendations", fields=fields)


def trending_serializer():
    fields = {ct.key: guest_item_serializer(ct, many=True, required=False) for ct in CONTENT_TYPES}
    fields["content"] = content_item_serializer(many=True)
    return inline_serializer(name="Trending", fields=fields)


def discover_serializer():
    return inline_serializer(name="Discover", fields={
        "trending_tracks": guest_item_serializer(BY_KEY["tracks"], many=True),
        **{f"popular_{key}": guest_item_serializer(BY_KEY[key], many=True)
           for key in ("artists", "movies", "manga", "anime")},
        "genres": genre_serializer(many=True)})


def genres_serializer(groups):
    return inline_serializer(name="GenresByGroup",
                             fields={group: genre_serializer(many=True, required=False) for group in groups})


def account_serializer():
    return inline_serializer(name="Account", fields={
        "username": serializers.CharField(), "first_name": serializers.CharField(),
        "last_name": serializers.CharField(), "email": serializers.CharField(),
        "avatar_url": serializers.CharField(allow_null=True), "is_staff": serializers.BooleanField()})


def envelope_serializer(name: str, data_field):
    return inline_serializer(
        name=name,
        fields={"success": serializers.BooleanField(), "message": serializers.CharField(), "data": data_field},
    )


def error_envelope():
    return inline_serializer(
        name="ErrorEnvelope",
        fields={
            "success": serializers.BooleanField(),
            "message": serializers.CharField(),
            "data": serializers.JSONField(allow_null=True),
            "errors": serializers.DictField(required=False),
        },
    )


def all_recommendations_serializer():
    fields = {ct.key: item_serializer(ct, many=True) for ct in CONTENT_TYPES}
    fields[BUDS_KEY] = bud_serializer(many=True)
    return inline_serializer(name="AllRecommendations", fields=fields)


class BodyRequiredSchema(AutoSchema):
    """A view method's schema whose request body is required although no one field of it is (one of several
    is; drf-spectacular marks a body required only when some field is)."""

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body:
            body["required"] = True
        return body


def body_required(method):
    """Marks a view method's request body required in the schema (put it below @extend_schema)."""
    method.kwargs = {**getattr(method, "kwargs", {}), "schema": BodyRequiredSchema}
    return method


def one_of_fields(*, name: str, fields: dict[str, serializers.Field]):
    """A request body of exactly one of `fields` (one field under several names), as a oneOf in the schema."""
    return PolymorphicProxySerializer(
        component_name=name, resource_type_field_name=None,
        serializers=[inline_serializer(name=f"{name}{''.join(p.capitalize() for p in key.split('_'))}",
                                       fields={key: field}) for key, field in fields.items()])


def training_status_serializer():
    """The running or last training job (app/services/training_jobs.py)."""
    part = inline_serializer(name="TrainingTypeStatus", fields={
        "state": serializers.ChoiceField(choices=["pending", "training", "done", "skipped", "failed"]),
        "version": serializers.CharField(required=False), "seconds": serializers.FloatField(required=False),
        "metrics": serializers.DictField(required=False), "error": serializers.CharField(required=False)})
    return inline_serializer(name="TrainingStatus", fields={
        "job_id": serializers.CharField(), "state": serializers.ChoiceField(
            choices=["starting", "running", "succeeded", "failed"]),
        "progress": serializers.FloatField(required=False), "pid": serializers.IntegerField(required=False),
        "requested_at": serializers.CharField(), "started_at": serializers.CharField(required=False, allow_null=True),
        "finished_at": serializers.CharField(required=False, allow_null=True),
        "error": serializers.CharField(required=False, allow_null=True),
        "types": serializers.DictField(child=part), "results": serializers.DictField(
            child=serializers.BooleanField(), required=False)})

"""The query parameters every recommendation endpoint shares (personal, similar and guest): which items an
answer may hold (`genre`, `exclude`, and for movies `year_min` / `year_max`: app/services/filters.py) and how
diverse it is (`diversity`, app/services/diversify.py). Validated data: {"item_filter": ItemFilter,
"diversity": float}; a bad value is a 400 naming its parameter."""
from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from app.services.filters import MAX_EXCLUDED, ItemFilter
from app.views.base import WholeNumberField

__all__ = ["DEFAULT_DIVERSITY", "FILTER_PARAMS", "YEAR_PARAMS", "FilterQuerySerializer", "YearQuerySerializer"]

# diversity when not given: 0, today's ranking exactly (and the cheapest answer: no re-rank runs)
DEFAULT_DIVERSITY = 0.0
FILTER_PARAMS = frozenset({"genre", "exclude", "diversity"})
YEAR_PARAMS = frozenset({"year_min", "year_max"})
# An excluded id's longest form (ids are IMDb, MAL, Spotify or uuid keys: tens of characters). With MAX_EXCLUDED
# of them the query stays far below the ~64 KB request line uvicorn accepts.
ID_MAX_LENGTH = 256

# A genre parameter names at least one genre: some character that is not a comma or a space (and no NUL).
GENRE_NAMES = RegexValidator(r"^[^\x00]*[^\x00,\s][^\x00]*$", "Name at least one genre (names separated by commas).")
ITEM_IDS = RegexValidator(r"^[^\x00]*[^\x00,\s][^\x00]*$", "Name at least one id (ids separated by commas).")


def _names(values, *, casefold: bool) -> list[str]:
    names = [name.strip() for value in values or () for name in value.split(",")]
    return [name.casefold() if casefold else name for name in names if name]


class FilterQuerySerializer(serializers.Serializer):
    genre = serializers.ListField(
        child=serializers.CharField(max_length=100, validators=[GENRE_NAMES]), required=False, max_length=20,
        help_text="Only items of these genres (any of them; case does not matter): the parameter repeated, or names "
                  "separated by commas. Items without genres never match.")
    exclude = serializers.ListField(
        child=serializers.CharField(max_length=ID_MAX_LENGTH, validators=[ITEM_IDS]), required=False,
        max_length=MAX_EXCLUDED,
        help_text=f"Item ids never returned (at most {MAX_EXCLUDED}): repeated, or separated by commas.")
    diversity = serializers.FloatField(
        min_value=0.0, max_value=1.0, default=DEFAULT_DIVERSITY,
        help_text="0 (the default): the ranking as it is; up to 1: re-ranked by maximal marginal relevance for "
                  "items less alike (item embeddings and genres).")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        given_genres, given_ids = attrs.pop("genre", None), attrs.pop("exclude", None)
        genres = frozenset(_names(given_genres, casefold=True))
        if given_genres is not None and not genres:
            raise serializers.ValidationError({"genre": ["Name at least one genre."]})
        ids = _names(given_ids, casefold=False)
        if len(ids) > MAX_EXCLUDED:
            raise serializers.ValidationError({"exclude": [f"At most {MAX_EXCLUDED} ids, got {len(ids)}."]})
        year_min, year_max = attrs.pop("year_min", None), attrs.pop("year_max", None)
        if year_min is not None and year_max is not None and year_min > year_max:
            raise serializers.ValidationError({"year_max": [f"year_max ({year_max}) is before year_min ({year_min})."]})
        attrs["item_filter"] = ItemFilter(genres=genres or None, exclude=frozenset(ids), year_min=year_min,
                                          year_max=year_max)
        return attrs


class YearQuerySerializer(FilterQuerySerializer):
    """The filters of a type whose items have a year (movies)."""

    year_min = WholeNumberField(min_value=1000, max_value=3000, required=False,
                                help_text="Only items of this year or later (items without a year never match).")
    year_max = WholeNumberField(min_value=1000, max_value=3000, required=False,
                                help_text="Only items of this year or earlier.")

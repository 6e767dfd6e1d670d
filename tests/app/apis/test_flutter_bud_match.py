"""What Flutter's lib/models/bud_match.dart (BudMatch.fromJson, and the older BudMatch{bud, similarity_score})
reads of each bud (spec §3.6): ids are strings, similarity_score a number on the outer item, counts ints."""
import pytest

from tests.app.apis.conftest import bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def _buds(client, users, path="/v1/recommendations/buds/") -> list[dict]:
    response = await client.get(path, headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    return response.json()["data"]


async def test_bud_match_from_json_reads_the_nested_bud_and_the_outer_similarity_score(client, users, demo_models):
    buds = await _buds(client, users)
    assert buds
    for bud in buds:
        person = bud["bud"]  # budData = json['bud'] ?? json
        assert isinstance(person["uid"], str) and person["uid"] == bud["uid"] == bud["id"]
        assert isinstance(person["username"], str) and person["username"]
        assert isinstance(bud["similarity_score"], float) and 0.0 <= bud["similarity_score"] <= 1.0
        assert bud["similarity_score"] == bud["similarity"]


async def test_bud_match_from_json_reads_int_common_counts(client, users, demo_models):
    buds = await _buds(client, users)
    for bud in buds:
        for key in ("common_artists_count", "common_tracks_count", "common_genres_count"):
            assert type(bud[key]) is int and bud[key] >= 0
        shown = {kind: len(items) for kind, items in bud["shared"].items()}
        assert bud["common_artists_count"] >= shown.get("artists", 0)  # all shared items, not the 3 shown
        assert bud["common_tracks_count"] >= shown.get("tracks", 0)
        assert bud["common_genres_count"] >= shown.get("genres", 0)
    assert any(bud["common_artists_count"] + bud["common_tracks_count"] + bud["common_genres_count"] for bud in buds)


async def test_the_buds_of_the_all_types_answer_have_the_same_shape(client, users, demo_models):
    response = await client.get("/v1/recommendations/?n=3", headers=bearer(token_for(users["normal"])))
    bud = response.json()["data"]["buds"][0]
    assert {"uid", "similarity_score", "bud", "common_artists_count", "common_tracks_count",
            "common_genres_count"} <= set(bud)

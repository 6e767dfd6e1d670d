"""What Flutter's lib/services/guest_service.dart (GuestService: its own Dio, JSON, no Authorization header)
calls, and what it and guest_discover_screen.dart read of the answers (spec §3.5)."""
import re

import pytest

from tests.app.apis.conftest import some_item_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]

JSON = {"Accept": "application/json"}


async def _data(client, path: str, query: dict | None = None) -> dict:
    response = await client.get(path, query or {}, headers=JSON)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True  # every GuestService call checks it first
    assert isinstance(body["data"], dict)
    return body["data"]


async def test_get_public_discover_answers_success_and_a_data_map(client, demo_models):
    data = await _data(client, "/v1/discover/public/")
    assert {"trending_tracks", "popular_artists", "popular_movies", "popular_manga", "popular_anime",
            "genres"} <= set(data)
    assert all(isinstance(data[key], list) and data[key] for key in data)


async def test_get_trending_content_all_answers_tracks_artists_movies_and_manga_lists(client, demo_models):
    data = await _data(client, "/v1/discover/public/trending/", {"type": "all"})
    for key in ("tracks", "artists", "movies", "manga"):  # getTrendingTracks / Artists / Movies / Manga
        assert isinstance(data[key], list) and data[key], key
        assert all(isinstance(item, dict) for item in data[key])


@pytest.mark.parametrize("kind", ["tracks", "artists", "movies", "manga"])
async def test_get_trending_content_of_one_type_answers_that_types_list(client, demo_models, kind):
    data = await _data(client, "/v1/discover/public/trending/", {"type": kind})
    assert set(data) == {kind, "content"}
    assert isinstance(data[kind], list) and data[kind]


async def test_get_trending_tracks_answers_a_name_an_artist_and_a_duration_for_each(client, demo_models):
    tracks = (await _data(client, "/v1/discover/public/trending/", {"type": "tracks"}))["tracks"]
    for track in tracks:  # guest_discover_screen.dart: track['name'], track['artist'], track['duration']
        assert isinstance(track["name"], str) and track["name"]
        assert isinstance(track["artist"], str) and track["artist"]
        assert re.fullmatch(r"\d+:\d\d", track["duration"])
        assert "image" in track  # DynamicDiscoverScreen: imageUrl ?? image


async def test_get_trending_artists_answers_a_non_empty_name_a_genre_and_a_popularity(client, demo_models):
    artists = (await _data(client, "/v1/discover/public/trending/", {"type": "artists"}))["artists"]
    for artist in artists:  # artist['name'][0] (an initial), artist['genre'], artist['popularity']
        assert isinstance(artist["name"], str) and artist["name"][0]
        assert artist["genre"] is None or isinstance(artist["genre"], str)
        assert isinstance(artist["popularity"], (int, float))


async def test_get_public_recommendations_movies_answers_data_keyed_by_type(client, demo_models):
    response = await client.get("/v1/recommendations/public/", {"type": "movies"}, headers=JSON)
    body = response.json()
    assert isinstance(body["data"]["movies"], list) and body["data"]["movies"]  # getPopularMovies
    assert "manga" not in body["data"]
    assert body["is_personalized"] is False


async def test_get_public_recommendations_manga_answers_data_keyed_by_type(client, demo_models):
    body = (await client.get("/v1/recommendations/public/", {"type": "manga"}, headers=JSON)).json()
    assert isinstance(body["data"]["manga"], list) and body["data"]["manga"]  # getPopularManga


async def test_get_public_recommendations_all_answers_movies_and_manga(client, demo_models):
    body = (await client.get("/v1/recommendations/public/", {"type": "all"}, headers=JSON)).json()
    assert body["data"]["movies"] and body["data"]["manga"]


async def test_get_genres_answers_music_movies_and_anime_with_hex_colours(client, demo_models):
    data = await _data(client, "/v1/discover/public/genres/")
    for group in ("music", "movies", "anime"):
        assert data[group], group
        for genre in data[group]:  # genre['name'], genre['color'] as #RRGGBB
            assert isinstance(genre["name"], str) and genre["name"]
            assert re.fullmatch(r"#[0-9A-F]{6}", genre["color"])


@pytest.mark.parametrize("kind, type_key", [("movie", "movies"), ("manga", "manga"), ("anime", "anime"),
                                            ("track", "tracks"), ("artist", "artists"), ("album", "albums")])
async def test_get_content_details_answers_the_items_data(client, demo_models, kind, type_key):
    item_id = await some_item_id(client, type_key)
    data = await _data(client, f"/v1/content/public/{kind}/{item_id}/")
    assert data["id"] == item_id


async def test_get_content_details_of_an_unknown_id_answers_404(client, demo_models):
    response = await client.get("/v1/content/public/movie/tt0000000000/", headers=JSON)
    assert response.status_code == 404  # getContentDetails: "Content not found"
    assert response.json()["success"] is False

"""What the React Native app's src/store/api.ts / contentApi.ts (RTK Query, JSON bodies, `authorization: Bearer`
when signed in) call, and what its screens read (spec §4): LoginScreen, HomeScreen, HomeAltScreen,
DiscoverScreen, DetailsScreen, MediaCarousel / TrackCard. Any error on HomeScreen's calls shows an error screen."""
import pytest

from tests.app.apis.conftest import bearer, some_item_id, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]


def _login_data(body: dict) -> dict:
    return body.get("data") or body  # LoginScreen: data = result?.data || result


async def test_login_json_posts_user_login_and_answers_an_access_token(client, users):
    response = await client.post("/v1/auth/login/json", {"username": "demo", "password": "demo-pass-123",
                                                         "remember_me": True}, content_type="application/json")
    assert response.status_code == 200
    data = _login_data(response.json())
    assert isinstance(data.get("access_token") or data["token"], str)


async def test_login_json_failure_answers_a_message(client, users):
    response = await client.post("/v1/auth/login/json", {"username": "demo", "password": "wrong-wrong"},
                                 content_type="application/json")
    assert response.status_code == 401
    assert isinstance(response.json()["message"], str)  # shown as error.data.message


async def test_login_for_access_token_posts_the_oauth_fields_as_json(client, users):
    response = await client.post("/v1/auth/login", {"grant_type": "password", "username": "demo",
                                                    "password": "demo-pass-123", "scope": "", "client_id": None,
                                                    "client_secret": None}, content_type="application/json")
    assert response.status_code == 200
    assert isinstance(_login_data(response.json())["access_token"], str)


async def test_refresh_token_posts_refresh_token_and_answers_data_access_token(client, users):
    login = await client.post("/v1/auth/login/json", {"username": "demo", "password": "demo-pass-123"},
                              content_type="application/json")
    response = await client.post("/v1/auth/refresh", {"refresh_token": login.json()["refresh_token"]},
                                 content_type="application/json")
    assert response.status_code == 200
    body = response.json()  # TokenResponse {success, message, data}
    assert body["success"] is True and isinstance(body["message"], str)
    assert isinstance(body["data"]["access_token"], str)


async def test_get_current_user_info_answers_data_with_first_name_username_and_avatar_url(client, users):
    response = await client.get("/v1/auth/me", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["username"] == "demo"
    assert isinstance(body["data"]["first_name"], str)
    assert body["data"]["avatar_url"] is None


async def test_public_recommendations_root_with_genre_and_limit_answers_data_content(client, demo_models):
    movies = (await client.get("/v1/recommendations/public/", {"type": "movies", "n": 1})).json()
    genre = movies["data"]["movies"][0]["genres"][0]
    response = await client.get("/v1/recommendations/public/", {"genre": genre, "limit": 5})
    assert response.status_code == 200
    content = response.json()["data"]["content"]  # HomeAltScreen
    assert content
    for item in content:  # id, type, cover, title || name, artist || type; key id + type
        assert isinstance(item["id"], str) and isinstance(item["type"], str)
        assert "cover" in item and "artist" in item
        assert isinstance(item["title"] or item["name"], str)
    assert len({(item["id"], item["type"]) for item in content}) == len(content)


async def test_public_discover_root_answers_popular_artists_and_trending_tracks(client, demo_models):
    response = await client.get("/v1/discover/public/")
    assert response.status_code == 200
    data = response.json()["data"]
    assert isinstance(data["popular_artists"], list) and data["popular_artists"]  # HomeScreen, DiscoverScreen
    track = data["trending_tracks"][0]
    assert isinstance(track["name"], str) and isinstance(track["artist"], str)
    assert "image_url" in track  # cover_url || image_url


async def test_public_trending_without_the_slash_with_content_type_and_limit_answers_data_tracks(client, demo_models):
    response = await client.get("/v1/discover/public/trending", {"content_type": "tracks", "limit": 5})
    assert response.status_code == 200
    tracks = response.json()["data"]["tracks"]
    assert len(tracks) == 5
    for track in tracks:  # MediaCarousel / TrackCard: id, image || cover_url || image_url, name, artist
        assert isinstance(track["id"], str)
        assert "image" in track and "image_url" in track
        assert isinstance(track["name"], str) and track["name"] and isinstance(track["artist"], str)


async def test_public_trending_with_content_type_all_answers_data_content(client, demo_models):
    response = await client.get("/v1/discover/public/trending", {"content_type": "all", "limit": 2})
    assert response.status_code == 200
    content = response.json()["data"]["content"]  # HomeAltScreen
    assert {item["type"] for item in content} >= {"movie", "manga", "anime", "track", "artist", "album"}
    assert all(isinstance(item["title"] or item["name"], str) for item in content)


async def test_public_genres_without_the_slash_answers_data_music_with_id_and_name(client, demo_models):
    response = await client.get("/v1/discover/public/genres", {"category": "music"})
    assert response.status_code == 200
    music = response.json()["data"]["music"]  # DiscoverScreen
    assert music and all(isinstance(g["id"], str) and g["id"] and isinstance(g["name"], str) for g in music)


@pytest.mark.parametrize("kind, type_key, title", [("movie", "movies", "title"), ("track", "tracks", "name"),
                                                   ("anime", "anime", "title"), ("artist", "artists", "name")])
async def test_get_content_details_answers_what_the_details_screen_reads(client, demo_models, kind, type_key, title):
    item_id = await some_item_id(client, type_key)
    response = await client.get(f"/v1/discover/public/{kind}/{item_id}/")
    assert response.status_code == 200
    body = response.json()
    content = body.get("data") or body  # content = data.data || data
    assert content["id"] == item_id
    assert "cover_url" in content and "image_url" in content  # cover_url || image_url || cover || poster
    assert isinstance(content.get("name") or content[title], str)  # name || title


async def test_health_check_answers_at_health_outside_v1(client, demo_models):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["success"] is True

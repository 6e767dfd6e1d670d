"""What Flutter's lib/data/network/api_service.dart (ApiService: Dio with JSON headers and `Bearer <token>`, as
RecommendationsBloc uses it) calls, and what the bloc and recommendations_state.dart read (spec §3.2-3.4).
Dio follows no redirect on a POST: each path answers as it is called."""
import pytest

from tests.app.apis.conftest import bearer, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]

JSON = {"Accept": "application/json"}


async def _login(client) -> dict:
    response = await client.post("/v1/login/", {"username": "demo", "password": "demo-pass-123"},
                                 content_type="application/json", headers=JSON)
    assert response.status_code == 200
    return response.json()


async def test_login_posts_to_v1_login_with_the_slash_and_answers_tokens(client, users):
    body = await _login(client)
    assert isinstance(body["access_token"], str) and isinstance(body["refresh_token"], str)


async def test_refresh_token_posts_without_a_trailing_slash_and_answers_access(client, users):
    refresh = (await _login(client))["refresh_token"]
    response = await client.post("/v1/token/refresh", {"refresh": refresh}, content_type="application/json",
                                 headers=JSON)
    assert response.status_code == 200  # not a 301 to the slashed path
    assert isinstance(response.json()["access"], str)


async def test_get_recommendations_answers_a_map_with_lists_for_every_getter(client, users, demo_models):
    response = await client.get("/v1/recommendations/", headers={**JSON, **bearer(token_for(users["normal"]))})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and isinstance(body["data"], dict)  # RecommendationsLoaded(data as Map)
    for key in ("tracks", "artists", "albums", "genres", "buds"):  # recommendations['<key>'] as List
        assert isinstance(body["data"][key], list), key


@pytest.mark.parametrize("kind", ["artists", "tracks", "albums", "genres", "buds"])
async def test_get_recommendations_by_type_answers_a_list(client, users, demo_models, kind):
    response = await client.get(f"/v1/recommendations/{kind}/",
                                headers={**JSON, **bearer(token_for(users["normal"]))})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and isinstance(body["data"], list) and body["data"]  # {type: data as List}


async def test_get_recommendations_by_an_unknown_type_answers_400_naming_the_valid_types(client, users, demo_models):
    response = await client.get("/v1/recommendations/podcasts/",
                                headers={**JSON, **bearer(token_for(users["normal"]))})
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["message"].startswith("Invalid recommendation type: podcasts. Valid types: [")
    assert "'buds'" in body["message"] and "'movies'" in body["message"]

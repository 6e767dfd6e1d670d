"""What Flutter's lib/models/auth_response.dart reads (LoginResponse.fromJson, TokenRefreshResponse.fromJson) of
the answers AuthRemoteDataSourceImpl gets, and the JWT claims AuthManager / AuthService decode (spec §3.3)."""
import jwt
import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]


async def _login(client, path: str = "/v1/login/"):
    return await client.post(path, {"username": "demo", "password": "demo-pass-123"},
                             content_type="application/json")


async def test_login_response_has_string_tokens_at_the_top_level(client, users):
    body = (await _login(client)).json()
    # json['access_token'] as String? ?? json['access'] as String; the same for refresh: non-null strings
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert isinstance(body["refresh_token"], str) and body["refresh_token"]
    # json['user_id'] as String? would throw on an int; token_type / expires_in are optional
    assert isinstance(body.get("user_id", ""), str)
    assert isinstance(body.get("expires_in", 0), int)


async def test_the_access_token_is_a_jwt_with_exp_user_id_and_username(client, users):
    token = (await _login(client)).json()["access_token"]
    assert token.count(".") == 2  # AuthService._isTokenExpired: three parts
    claims = jwt.decode(token, options={"verify_signature": False})
    assert isinstance(claims["exp"], int)
    assert str(claims["user_id"]) == str(users["normal"].pk)  # payload['user_id'] ?? payload['sub']
    assert claims["username"] == "demo"  # getUsernameFromToken


async def test_token_refresh_response_posts_refresh_with_the_slash_and_answers_access_token(client, users):
    refresh = (await _login(client)).json()["refresh_token"]
    response = await client.post("/v1/token/refresh/", {"refresh": refresh}, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["access_token"], str) and body["access_token"] == body["access"]


async def test_auth_service_login_fallback_posts_v1_login_without_the_slash(client, users):
    response = await _login(client, "/v1/login")  # followRedirects: false
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body.get("access") or body["access_token"], str)
    assert isinstance(body.get("refresh") or body["refresh_token"], str)


async def test_a_wrong_password_answers_401(client, users):
    response = await client.post("/v1/login/", {"username": "demo", "password": "nope-nope"},
                                 content_type="application/json")
    assert response.status_code == 401  # "Invalid username or password"

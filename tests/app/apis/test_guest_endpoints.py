"""Every guest endpoint: no token needed, a bad Authorization header ignored (Flutter's legacy ApiService sends
`Bearer null`), the guest throttle per client address."""
import pytest

from app.views import recommendations_views as apis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]

GUEST_PATHS = ["/v1/recommendations/public/", "/v1/discover/public/", "/v1/discover/public/trending/",
               "/v1/discover/public/trending", "/v1/discover/public/genres/", "/v1/discover/public/genres",
               "/v1/content/public/movie/tt900000002/", "/v1/discover/public/movie/tt900000002/"]


@pytest.mark.parametrize("path", GUEST_PATHS)
@pytest.mark.parametrize("authorization", [None, "Bearer null", "Bearer not-a-jwt", "Basic ZGVtbzpkZW1v"])
async def test_it_needs_no_token_and_ignores_a_bad_authorization_header(client, demo_models, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.content
    assert response.json()["success"] is True


@pytest.mark.parametrize("path", GUEST_PATHS)
async def test_it_is_throttled_with_the_guest_throttle(client, demo_models, monkeypatch, path):
    monkeypatch.setattr(apis.GuestThrottle, "rate", "2/min", raising=False)
    codes = [(await client.get(path)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    response = await client.get(path)
    assert response.json()["success"] is False and "Retry-After" in response.headers

"""app/renderers.py: the orjson renderer writes what DRF's JSONRenderer writes."""
import pytest
from rest_framework.renderers import JSONRenderer

from app.renderers import ORJSONRenderer

PAYLOADS = [
    {"success": True, "message": "Movies recommendations fetched successfully", "data": [
        {"id": "tt0114709", "title": "Toy Story", "year": 1995, "rating": 8.3, "genres": ["Animation", "Comedy"],
         "plot": None, "recommendation_score": 1.120998, "reason": "personalised",
         "because": [{"id": "tt0113497", "title": "Jumanji"}]}]},
    {"success": False, "message": "Invalid input: n: Ensure this value is less than or equal to 100.", "data": None,
     "errors": {"n": ["Ensure this value is less than or equal to 100."]}},
    {"title": "Amélie — 千と千尋の神隠し \u2028 line \u2029 paragraph", "scores": [0.1, 1e-7, -2.5, 3.0, 10**20]},
    [],
    {},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_it_writes_the_same_bytes_as_drfs_renderer(payload):
    assert ORJSONRenderer().render(payload) == JSONRenderer().render(payload)


def test_nothing_renders_as_an_empty_body():
    assert ORJSONRenderer().render(None) == b""


def test_a_client_asking_for_indentation_gets_drfs_pretty_printing():
    payload = PAYLOADS[0]
    media = "application/json; indent=2"
    assert ORJSONRenderer().render(payload, media, {}) == JSONRenderer().render(payload, media, {})


def test_a_json_fragment_is_embedded_as_it_is_and_the_line_separators_in_it_are_escaped():
    import orjson

    from app.services.answer_cache import JsonFragment

    inner = [{"title": "Amélie — 千と千尋の神隠し \u2028 line \u2029 paragraph", "score": 1.120998, "year": 2001}]
    wrapped = {"success": True, "data": JsonFragment(orjson.dumps(inner))}
    assert ORJSONRenderer().render(wrapped) == JSONRenderer().render({"success": True, "data": inner})
    media = "application/json; indent=2"  # DRF's own encoder takes the fragment too
    assert ORJSONRenderer().render(wrapped, media, {}) == JSONRenderer().render({"success": True, "data": inner},
                                                                               media, {})

"""app/services/answer_cache.py: a byte-bounded LRU of answers, dropped per model when its version changes."""
import pytest

from app.services.answer_cache import AnswerCache


def test_a_stored_answer_comes_back_for_the_same_model_version_user_and_n():
    cache = AnswerCache(1000)
    cache.put("movie", "v1", "u1", 20, value=b"[1]")
    assert cache.get("movie", "v1", "u1", 20) == b"[1]"
    assert cache.get("movie", "v1", "u1", 10) is None
    assert cache.get("movie", "v2", "u1", 20) is None
    assert cache.get("anime", "v1", "u1", 20) is None
    assert (cache.hits, cache.misses) == (1, 3)


def test_it_never_holds_more_bytes_than_its_bound_and_drops_the_least_recently_used():
    cache = AnswerCache(100)
    for user in ("a", "b", "c"):
        cache.put("movie", "v1", user, 20, value=b"x" * 40)
    assert cache.size_bytes == 80 and len(cache) == 2
    assert cache.get("movie", "v1", "a", 20) is None  # the oldest went first
    cache.get("movie", "v1", "b", 20)  # b is now the most recently used
    cache.put("movie", "v1", "d", 20, value=b"y" * 40)
    assert cache.get("movie", "v1", "b", 20) is not None
    assert cache.get("movie", "v1", "c", 20) is None
    cache.put("movie", "v1", "big", 20, value=b"z" * 101)  # bigger than the whole cache: not kept
    assert cache.get("movie", "v1", "big", 20) is None and cache.size_bytes == 80


def test_storing_an_answer_again_replaces_it_without_counting_it_twice():
    cache = AnswerCache(100)
    cache.put("movie", "v1", "a", 20, value=b"x" * 30)
    cache.put("movie", "v1", "a", 20, value=b"y" * 50)
    assert cache.get("movie", "v1", "a", 20) == b"y" * 50 and cache.size_bytes == 50


def test_a_new_version_of_a_model_drops_that_models_older_answers_only():
    cache = AnswerCache(10_000)
    cache.put("movie", "v1", "a", 20, value=b"old")
    cache.put("anime", "w1", "a", 20, value=b"anime")
    cache.put("movie", "v2", "b", 20, value=b"new")
    assert len(cache) == 2 and cache.size_bytes == len(b"anime") + len(b"new")
    assert cache.get("anime", "w1", "a", 20) == b"anime"


def test_a_zero_byte_cache_keeps_nothing_and_a_negative_one_is_refused():
    cache = AnswerCache(0)
    cache.put("movie", "v1", "a", 20, value=b"[]")
    assert cache.get("movie", "v1", "a", 20) is None
    with pytest.raises(ValueError):
        AnswerCache(-1)


def test_get_or_make_makes_a_missing_answer_once_and_keeps_it():
    cache, made = AnswerCache(1000), []

    def make():
        made.append(1)
        return b"[1]"

    assert cache.get_or_make("movie", "v1", "a", 20, make=make) == b"[1]"
    assert cache.get_or_make("movie", "v1", "a", 20, make=make) == b"[1]"
    assert len(made) == 1 and (cache.hits, cache.misses) == (1, 1)


def test_a_fragment_holds_long_json_compressed_and_gives_back_the_same_text():
    import orjson

    from app.services.answer_cache import JsonFragment

    page = orjson.dumps([{"id": f"tt{i:07d}", "title": f"Movie {i}", "genres": ["Drama", "Crime"],
                          "recommendation_score": 1.0 / (i + 1), "reason": "personalised"} for i in range(20)])
    fragment = JsonFragment(page)
    assert fragment.text == page and len(fragment) < len(page) / 2
    assert orjson.dumps({"data": fragment.fragment}) == b'{"data":' + page + b"}"
    short = JsonFragment(b"[]")
    assert short.text == b"[]" and len(short) == 2

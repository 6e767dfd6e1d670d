"""The recommendation service on a hand-built graph in the real Neo4j: two taste groups that never overlap,
so the right answers are known. Group A likes movies m0..m5, anime a0..a5 and tracks t0..t5; group B likes
m6..m11, a6..a11 and t6..t11. "crossover" has group A's anime and tracks but no movie at all."""
import pytest
from django.conf import settings

from app.content_types import BY_KEY
from app.services import graph_writes
from app.services.model_registry import registry
from app.services.recommendation_service import (
    buds_for_user,
    models_train,
    recommendations_for_user,
    similar_items,
)

pytestmark = pytest.mark.neo4j

MOVIES, ANIME, TRACKS = BY_KEY["movies"], BY_KEY["anime"], BY_KEY["tracks"]
GROUP_A = [f"a{i}" for i in range(12)]
GROUP_B = [f"b{i}" for i in range(12)]


def _movie(i):
    return f"tt{i:07d}"


@pytest.fixture(scope="module")
def two_tribes(neo4j, tmp_path_factory):
    from app import graph

    graph.query("MATCH (n) DETACH DELETE n")
    settings.MUSICBUD_MODEL_DIR = tmp_path_factory.mktemp("models")
    registry.__init__()
    graph_writes.items_upsert(content_type=MOVIES, rows=[{"imdb_id": _movie(i), "title": f"Movie {i}"} for i in range(12)])
    graph_writes.items_upsert(content_type=ANIME, rows=[{"anime_id": i, "title": f"Anime {i}"} for i in range(12)])
    graph_writes.items_upsert(content_type=TRACKS, rows=[{"uid": f"t{i}", "name": f"Track {i}"} for i in range(12)])
    everyone = GROUP_A + GROUP_B + ["crossover"]
    graph_writes.users_upsert(rows=[{"uid": u, "username": f"user_{u}", "accounts": ["ImdbUser", "MalUser", "SpotifyUser"]}
                                    for u in everyone])
    movies, anime, tracks = [], [], []
    for group, offset in ((GROUP_A, 0), (GROUP_B, 6)):
        for n, user in enumerate(group):
            picks = [offset + (n + k) % 6 for k in range(4)]  # 4 of the group's 6 items, rotating
            movies += [{"user_uid": user, "item_id": _movie(i), "rel": "LIKES"} for i in picks]
            anime += [{"user_uid": user, "item_id": i, "rel": "TOP_ANIME"} for i in picks]
            tracks += [{"user_uid": user, "item_id": f"t{i}", "rel": "LIKES_TRACK"} for i in picks]
    anime += [{"user_uid": "crossover", "item_id": i, "rel": "TOP_ANIME"} for i in range(4)]
    tracks += [{"user_uid": "crossover", "item_id": f"t{i}", "rel": "LIKES_TRACK"} for i in range(4)]
    graph_writes.interactions_upsert(content_type=MOVIES, rows=movies)
    graph_writes.interactions_upsert(content_type=ANIME, rows=anime)
    graph_writes.interactions_upsert(content_type=TRACKS, rows=tracks)
    results = models_train(content_types=["movies", "anime", "tracks"])
    assert results == {"movie": True, "anime": True, "track": True, "taste": True}
    return results


def _ids(items):
    return [i["id"] for i in items]


def test_a_user_gets_the_rest_of_their_groups_movies_first(two_tribes):
    recs = recommendations_for_user(username="user_a0", content_type="movies", n=2)
    assert set(_ids(recs)) == {_movie(4), _movie(5)}  # a0 has m0..m3; m4, m5 are the group's others
    assert all(r["reason"] == "personalised" for r in recs)


def test_music_is_recommended_from_spotify_history(two_tribes):
    recs = recommendations_for_user(username="user_b0", content_type="tracks", n=2)
    assert set(_ids(recs)) == {"t10", "t11"}
    assert all(set(r) >= {"id", "name", "recommendation_score", "because"} for r in recs)


def test_because_items_always_come_from_the_users_history(two_tribes):
    history = {_movie(i) for i in range(4)}
    for rec in recommendations_for_user(username="user_a0", content_type="movies", n=8):
        assert {b["id"] for b in rec["because"]} <= history
        if rec["reason"] == "popular":
            assert rec["because"] == []


def test_cross_domain_a_user_without_movies_gets_their_groups_movies(two_tribes):
    recs = recommendations_for_user(username="user_crossover", content_type="movies", n=6)
    assert recs[0]["reason"] == "cross_domain"
    assert set(_ids(recs)) == {_movie(i) for i in range(6)}
    anime_titles = {f"Anime {i}" for i in range(4)} | {f"Track {i}" for i in range(4)}
    for rec in recs:
        assert {b["title"] for b in rec["because"]} <= anime_titles


def test_buds_rank_a_same_taste_user_above_a_disjoint_one_and_never_the_user(two_tribes):
    buds = buds_for_user(username="user_a0", n=30)
    ids = _ids(buds)
    assert "a0" not in ids
    assert set(ids[:11]) <= set(GROUP_A) | {"crossover"}
    assert max(ids.index(b) for b in GROUP_A[1:]) < min(ids.index(b) for b in GROUP_B if b in ids)
    first = buds[0]
    assert 0.0 <= first["similarity"] <= 1.0 and first["username"] == f"user_{first['id']}"
    assert first["shared"] and all(len(v) <= 3 for v in first["shared"].values())


def test_a_user_with_no_history_gets_no_buds(two_tribes):
    assert buds_for_user(username="nobody-at-all", n=5) == []


def test_similar_items_of_an_item_in_a_tight_cluster_come_from_that_cluster(two_tribes):
    similar = similar_items(content_type="movies", item_id=_movie(0), n=5)
    assert set(_ids(similar)) == {_movie(i) for i in range(1, 6)}
    assert all(-1.0 <= s["similarity"] <= 1.0 for s in similar)


def test_similar_items_of_an_unknown_id_is_a_404(two_tribes):
    from app.errors import UnknownItemError

    with pytest.raises(UnknownItemError):
        similar_items(content_type="movies", item_id="tt9999999", n=5)


def test_the_in_memory_answer_is_the_one_a_worker_thread_gives(two_tribes):
    import orjson

    from app.services.recommendation_service import (
        answer_cache,
        recommendations_json_in_memory_for_user,
        recommendations_versioned_for_user,
    )

    answer_cache().clear()  # computed here, not an answer kept by another test
    for user in ("user_a0", "user_b3"):
        registry.get("movie")
        registry.users()  # both just looked at: no check due
        fast = recommendations_json_in_memory_for_user(username=user, content_type="movies", n=5)
        assert fast is not None and len(orjson.loads(fast[0].text)) == 5
        fast = (orjson.loads(fast[0].text), fast[1])
        assert fast == recommendations_versioned_for_user(username=user, content_type="movies", n=5)


def test_the_cached_json_answer_is_the_in_memory_answer_and_is_computed_once(two_tribes, monkeypatch):
    import orjson

    from app.services import recommendation_service as service

    registry.get("movie")
    registry.users()
    service.answer_cache().clear()
    expected, version = service.recommendations_versioned_for_user(username="user_a0", content_type="movies", n=5)
    first = service.recommendations_json_in_memory_for_user(username="user_a0", content_type="movies", n=5)
    assert first is not None and first[1] == version
    assert orjson.loads(first[0].text) == expected
    model = registry.loaded("movie")
    monkeypatch.setattr(type(model), "recommend", lambda *a, **k: pytest.fail("scored again"))
    again = service.recommendations_json_in_memory_for_user(username="user_a0", content_type="movies", n=5)
    assert again[0] is first[0] and again[1] == version
    assert service.answer_cache().hits == 1


def test_a_new_model_version_is_never_answered_from_the_old_ones_cached_json(two_tribes):
    from app.services import recommendation_service as service

    registry.get("movie")
    registry.users()
    old = service.recommendations_json_in_memory_for_user(username="user_b3", content_type="movies", n=3)
    assert service.models_train(content_types=["movies"])["movie"] is True
    registry.get("movie")
    registry.users()
    new = service.recommendations_json_in_memory_for_user(username="user_b3", content_type="movies", n=3)
    assert new[1] != old[1]
    assert service.answer_cache().get("movie", old[1], "b3", 3) is None  # dropped with its version


def test_the_all_types_answer_with_cached_parts_renders_as_the_answers_computed_afresh(two_tribes):
    import orjson

    from app.renderers import ORJSONRenderer
    from app.services import recommendation_service as service

    registry.get("movie")
    registry.users()
    for _ in range(2):  # empty cache, then the parts it kept
        rendered = orjson.loads(ORJSONRenderer().render(service.recommendations_all_for_user(username="user_a2", n=4)))
        assert rendered["movies"] == recommendations_for_user(username="user_a2", content_type="movies", n=4)
        assert rendered["anime"] == recommendations_for_user(username="user_a2", content_type="anime", n=4)
        assert rendered["buds"] == buds_for_user(username="user_a2", n=4)
    assert service.answer_cache().hits >= 2


def test_cached_buds_are_the_buds_and_a_user_without_them_gets_an_empty_list(two_tribes):
    import orjson

    from app.services.recommendation_service import buds_json_for_user

    for _ in range(2):
        assert orjson.loads(buds_json_for_user(username="user_b1", n=5).text) == buds_for_user(username="user_b1", n=5)
    assert orjson.loads(buds_json_for_user(username="nobody-at-all", n=5).text) == []


def test_the_in_memory_path_leaves_to_a_thread_whatever_may_read_the_graph_or_a_file(two_tribes, settings):
    from app.services.recommendation_service import recommendations_json_in_memory_for_user

    registry.get("movie")
    registry.users()
    assert recommendations_json_in_memory_for_user(username="user_crossover", content_type="movies", n=5) is None
    assert recommendations_json_in_memory_for_user(username="nobody", content_type="movies", n=5) is None
    settings.MUSICBUD_MODEL_RELOAD_SECONDS = 0  # a check for a newer version is always due
    assert recommendations_json_in_memory_for_user(username="user_a0", content_type="movies", n=5) is None


def test_preloading_loads_every_saved_model_before_any_request(two_tribes):
    from app.services.recommendation_service import models_preload

    registry.__init__()  # a worker that has served nothing yet
    models_preload()
    for key in ("movie", "anime", "track", "taste"):
        assert registry.loaded(key) is not None, key
    assert registry.users_loaded()["user_a0"] == "a0"


def test_training_running_is_true_exactly_while_the_training_lock_is_held(tmp_path, settings):
    from app.services.recommendation_service import _training_lock, training_running

    settings.MUSICBUD_MODEL_DIR = tmp_path / "models"
    assert training_running() is False  # no lock file yet
    with _training_lock():
        assert training_running() is True
        assert training_running(model_dir=tmp_path / "elsewhere") is False
    assert training_running() is False

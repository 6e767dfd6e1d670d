"""app/services/recommendation_service.py: the one serving path, on a hand-built graph in the real Neo4j: two taste groups that never overlap,
so the right answers are known. Group A likes movies m0..m5, anime a0..a5 and tracks t0..t5; group B likes
m6..m11, a6..a11 and t6..t11. "crossover" has group A's anime and tracks but no movie at all."""
import orjson
import pytest
from django.conf import settings

from app.content_types import BY_KEY
from app.services import graph_writes
from app.services.model_registry import registry
from app.services import recommendation_service as service
from app.services.answers import answers
from app.services.training import models_train

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


async def recommendations_for_user(**kwargs) -> list[dict]:
    return orjson.loads((await service.recommendations_for_user(**kwargs)).json.text)


async def buds_for_user(**kwargs) -> list[dict]:
    return orjson.loads((await service.buds_for_user(**kwargs)).json.text)


async def test_a_user_gets_the_rest_of_their_groups_movies_first(two_tribes):
    recs = await recommendations_for_user(username="user_a0", content_type="movies", n=2)
    assert set(_ids(recs)) == {_movie(4), _movie(5)}  # a0 has m0..m3; m4, m5 are the group's others
    assert all(r["reason"] == "personalised" for r in recs)


async def test_music_is_recommended_from_spotify_history(two_tribes):
    recs = await recommendations_for_user(username="user_b0", content_type="tracks", n=2)
    assert set(_ids(recs)) == {"t10", "t11"}
    assert all(set(r) >= {"id", "name", "recommendation_score", "because"} for r in recs)


async def test_because_items_always_come_from_the_users_history(two_tribes):
    history = {_movie(i) for i in range(4)}
    for rec in await recommendations_for_user(username="user_a0", content_type="movies", n=8):
        assert {b["id"] for b in rec["because"]} <= history
        if rec["reason"] == "popular":
            assert rec["because"] == []


async def test_cross_domain_a_user_without_movies_gets_their_groups_movies(two_tribes):
    recs = await recommendations_for_user(username="user_crossover", content_type="movies", n=6)
    assert recs[0]["reason"] == "cross_domain"
    assert set(_ids(recs)) == {_movie(i) for i in range(6)}
    anime_titles = {f"Anime {i}" for i in range(4)} | {f"Track {i}" for i in range(4)}
    for rec in recs:
        assert {b["title"] for b in rec["because"]} <= anime_titles


async def test_known_new_and_cross_domain_users_are_all_answered_by_the_chain_which_names_its_links(
        two_tribes, monkeypatch):
    from ai.recommendation_engine import FallbackChain

    calls = []
    real = FallbackChain.recommend

    def recorded(chain, user, n=10, filter_items=None):
        results = real(chain, user, n=n, filter_items=filter_items)
        calls.append({link for _, _, link in results})
        return results

    monkeypatch.setattr(FallbackChain, "recommend", recorded)
    answers().clear()
    for username, links in (("user_a0", {"personalised"}), ("nobody-at-all", {"trending"}),  # every like is recent
                            ("user_crossover", {"cross_domain"})):
        recs = await recommendations_for_user(username=username, content_type="movies", n=8)
        assert calls.pop() == links == {r["reason"] for r in recs}, username
    assert calls == []


async def test_buds_rank_a_same_taste_user_above_a_disjoint_one_and_never_the_user(two_tribes):
    buds = await buds_for_user(username="user_a0", n=30)
    ids = _ids(buds)
    assert "a0" not in ids
    assert set(ids[:11]) <= set(GROUP_A) | {"crossover"}
    assert max(ids.index(b) for b in GROUP_A[1:]) < min(ids.index(b) for b in GROUP_B if b in ids)
    first = buds[0]
    assert 0.0 <= first["similarity"] <= 1.0 and first["username"] == f"user_{first['id']}"
    assert first["shared"] and all(len(v) <= 3 for v in first["shared"].values())


async def test_a_user_with_no_history_gets_no_buds(two_tribes):
    assert await buds_for_user(username="nobody-at-all", n=5) == []


async def test_similar_items_of_an_item_in_a_tight_cluster_come_from_that_cluster(two_tribes):
    similar = await service.similar_items(content_type="movies", item_id=_movie(0), n=5)
    assert set(_ids(similar)) == {_movie(i) for i in range(1, 6)}
    assert all(-1.0 <= s["similarity"] <= 1.0 for s in similar)


async def test_similar_items_of_an_unknown_id_is_a_404(two_tribes):
    from app.errors import UnknownItemError

    with pytest.raises(UnknownItemError):
        await service.similar_items(content_type="movies", item_id="tt9999999", n=5)


async def test_an_answer_is_computed_once_and_then_served_from_the_answer_cache(two_tribes, monkeypatch):
    from ai.recommendation_engine import FallbackChain

    answers().clear()
    first = await service.recommendations_for_user(username="user_a0", content_type="movies", n=5)
    monkeypatch.setattr(FallbackChain, "recommend", lambda *a, **k: pytest.fail("ranked again"))
    again = await service.recommendations_for_user(username="user_a0", content_type="movies", n=5)
    assert again.json is first.json and again.model_version == first.model_version
    assert answers().hits == 1 and len(orjson.loads(first.json.text)) == 5


async def test_a_new_model_version_is_never_answered_from_the_old_ones_cached_json(two_tribes):
    old = await service.recommendations_for_user(username="user_b3", content_type="movies", n=3)
    assert models_train(content_types=["movies"])["movie"] is True
    new = await service.recommendations_for_user(username="user_b3", content_type="movies", n=3)
    assert new.model_version != old.model_version
    assert not [key for key in answers()._entries if key[0] == "movie" and old.model_version in key[1]]


async def test_the_all_types_answer_with_cached_parts_renders_as_the_answers_computed_afresh(two_tribes):
    from app.renderers import ORJSONRenderer

    for _ in range(2):  # empty cache, then the parts it kept
        answers().clear() if _ == 0 else None
        rendered = orjson.loads(ORJSONRenderer().render(
            await service.recommendations_all_for_user(username="user_a2", n=4)))
        assert rendered["movies"] == await recommendations_for_user(username="user_a2", content_type="movies", n=4)
        assert rendered["anime"] == await recommendations_for_user(username="user_a2", content_type="anime", n=4)
        assert rendered["buds"] == await buds_for_user(username="user_a2", n=4)
    assert answers().hits >= 2


async def test_cached_buds_are_the_buds_and_a_user_without_them_gets_an_empty_list(two_tribes):
    answers().clear()
    first = await buds_for_user(username="user_b1", n=5)
    assert first and await buds_for_user(username="user_b1", n=5) == first
    assert answers().hits == 1
    assert await buds_for_user(username="nobody-at-all", n=5) == []


async def test_a_known_users_answer_needs_no_thread_and_what_may_read_the_graph_or_a_file_gets_one(
        two_tribes, thread_hops, settings):
    hops = thread_hops
    settings.MUSICBUD_MODEL_RELOAD_SECONDS = 3600  # no check for a newer model falls due until the end says so
    await service.recommendations_for_user(username="user_a0", content_type="movies", n=5)  # settles every check
    hops.clear()
    await service.recommendations_for_user(username="user_a0", content_type="movies", n=5)
    assert hops == []
    await service.recommendations_for_user(username="nobody", content_type="movies", n=5)
    assert hops == ["user_uid_get"]  # not in the saved directory: the graph is asked
    hops.clear()
    await service.recommendations_for_user(username="nobody", content_type="movies", n=5)
    assert hops == []  # ... once: the graph said recently that it has no such user
    await service.recommendations_for_user(username="user_crossover", content_type="movies", n=5)
    assert hops == []  # no movie history in the model, and the change feed brought none: nothing to read
    hops.clear()
    settings.MUSICBUD_MODEL_RELOAD_SECONDS = 0  # a check for a newer version is always due
    await service.recommendations_for_user(username="user_a0", content_type="movies", n=5)
    assert "get" in hops and "users" in hops


async def test_preloading_loads_every_saved_model_before_any_request(two_tribes, monkeypatch):
    import asyncio

    registry.__init__()  # a worker that has served nothing yet
    service.models_preload()
    monkeypatch.setattr(asyncio, "to_thread", lambda *a, **k: pytest.fail("a thread after preloading"))
    for key in ("movie", "anime", "track", "taste"):
        assert await registry.aget(key) is not None, key
    assert (await registry.users_aget())["user_a0"] == "a0"
    assert "profiles" in vars(await registry.aget("taste"))  # the buds' taste profiles are made too


def test_training_running_is_true_exactly_while_the_training_lock_is_held(tmp_path, settings):
    from app.services.training import training_lock, training_running

    settings.MUSICBUD_MODEL_DIR = tmp_path / "models"
    assert training_running() is False  # no lock file yet
    with training_lock():
        assert training_running() is True
        assert training_running(model_dir=tmp_path / "elsewhere") is False
    assert training_running() is False


async def test_trending_moving_remakes_only_the_answers_that_reached_the_trending_link(two_tribes):
    import time

    answers().clear()
    model = await registry.aget("movie")
    assert model.trending is not None
    known = await service.recommendations_for_user(username="user_a0", content_type="movies", n=3)
    stranger = await service.recommendations_for_user(username="user_nobody", content_type="movies", n=3)
    assert {i["reason"] for i in orjson.loads(known.json.text)} == {"personalised"}
    assert {i["reason"] for i in orjson.loads(stranger.json.text)} <= {"trending", "popular"}
    quiet = _movie(11)  # a movie nobody's answer has first: a burst of likes makes it the trending one
    model.trending.add([model.item_map[quiet]], [1000.0], [time.time()], now=time.time())
    again = await service.recommendations_for_user(username="user_a0", content_type="movies", n=3)
    assert again.json is known.json  # filled by the personalised link: still the cached answer
    moved = await service.recommendations_for_user(username="user_nobody", content_type="movies", n=3)
    assert moved.json is not stranger.json
    assert orjson.loads(moved.json.text)[0] == {**orjson.loads(moved.json.text)[0], "id": quiet, "reason": "trending"}


def test_a_look_for_new_items_that_finds_the_same_ones_keeps_their_version(two_tribes):
    from app.services.new_items import new_items_refresh

    model = registry.current("movie")
    first = new_items_refresh(content_type=MOVIES, model=model)
    assert new_items_refresh(content_type=MOVIES, model=model) is first  # nothing new: cached answers stay valid
    graph_writes.items_upsert(content_type=MOVIES, rows=[{"imdb_id": _movie(40), "title": "Movie 40",
                                                          "genres": ["Drama"]}])
    found = new_items_refresh(content_type=MOVIES, model=model)
    assert found.version != first.version and _movie(40) in found.ids.tolist()

"""app/services/live.py on a real Neo4j: what a user just did counts at once, without retraining, on a graph whose
edges carry created_at (the change feed follows them) and on one whose edges carry nothing (MusicBud's: a user's
history is read again when they ask). Two taste groups that never overlap: group A likes movies m0..m5, group B
m6..m11, each user four of their group's six."""
from __future__ import annotations

import time

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from app import graph
from app.content_types import BY_KEY
from app.services import graph_writes
from app.services.answers import answers
from app.services.live import live
from app.services.model_registry import registry

pytestmark = pytest.mark.neo4j

MOVIES = BY_KEY["movies"]
GROUP_A, GROUP_B = [f"a{i}" for i in range(12)], [f"b{i}" for i in range(12)]


def _movie(i: int) -> str:
    return f"tt{i:07d}"


def _write_graph(*, timed: bool) -> None:
    graph.query("MATCH (n) DETACH DELETE n")
    graph_writes.items_upsert(content_type=MOVIES, rows=[{"imdb_id": _movie(i), "title": f"Movie {i}"}
                                                         for i in range(12)])
    graph_writes.users_upsert(rows=[{"uid": u, "username": f"user_{u}", "accounts": ["ImdbUser"]}
                                    for u in GROUP_A + GROUP_B + ["newcomer"]])
    rows = []
    for group, offset in ((GROUP_A, 0), (GROUP_B, 6)):
        for n, user in enumerate(group):
            rows += [{"user_uid": user, "item_id": _movie(offset + (n + k) % 6), "rel": "LIKES",
                      "created_at": 1_700_000_000} for k in range(4)]
    graph_writes.interactions_upsert(content_type=MOVIES, rows=rows, timed=timed)


def _trained(tmp_path_factory) -> None:
    from app.services.training import models_train

    settings.MUSICBUD_MODEL_DIR = tmp_path_factory.mktemp("models")
    registry.__init__()
    live.reset()
    assert models_train(content_types=["movies"])["movie"] is True
    registry.get("movie")
    live.poll()  # Neo4j plans the feed's query once (seconds, cold); then a poll takes milliseconds


@pytest.fixture(scope="module")
def timed_graph(neo4j, tmp_path_factory):
    _write_graph(timed=True)
    _trained(tmp_path_factory)
    yield
    live.reset()


@pytest.fixture(scope="module")
def untimed_graph(neo4j, tmp_path_factory):
    _write_graph(timed=False)
    _trained(tmp_path_factory)
    yield
    live.reset()


def ask(username: str, n: int = 5) -> list[dict]:
    from app.services.recommendation_service import recommendations_for_user

    answer = async_to_sync(recommendations_for_user)(username=username, content_type="movies", n=n)
    return orjson.loads(answer.json.text)


def like(uid: str, movie: str, *, timed: bool = True) -> None:
    graph_writes.interactions_upsert(content_type=MOVIES, rows=[{"user_uid": uid, "item_id": movie, "rel": "LIKES"}],
                                     timed=timed)


def unlike(uid: str, movie: str) -> None:
    graph.query("MATCH (:ParentUser {uid: $uid})-[:CONNECTED_TO_IMDB]->()-[r:LIKES]->(:ImdbMovie {imdb_id: $m}) "
                "DELETE r", uid=uid, m=movie)


def wait_until(condition, *, timeout: float) -> float:
    """Seconds until condition() held (fails after `timeout`)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.05)
    return time.monotonic() - started


def test_the_feed_follows_a_graph_whose_edges_carry_created_at(timed_graph):
    assert registry.current("movie").manifest["snapshot"]["untimed_edges"] == 0


def test_a_liked_movie_leaves_the_next_answer_within_the_feed_interval(timed_graph, settings):
    settings.MUSICBUD_FEED_SECONDS = 0.1
    live.start()
    first = ask("user_a0")[0]["id"]
    like("a0", first)
    took = wait_until(lambda: first not in {i["id"] for i in ask("user_a0")}, timeout=3)
    assert took < 1.0
    assert {i["id"] for i in ask("user_a0")} <= {_movie(i) for i in range(12)} - {first}


    assert {i["reason"] for i in ask("user_newcomer")} <= {"trending", "popular"}  # the chain for a stranger
    settings.MUSICBUD_FEED_SECONDS = 0.1
    live.start()
    assert {i["reason"] for i in ask("user_newcomer")} <= {"trending", "popular"}
    like("newcomer", _movie(7))  # group B's
    wait_until(lambda: ask("user_newcomer")[0]["reason"] == "personalised", timeout=3)
    recs = ask("user_newcomer", n=4)
    assert _movie(7) not in {i["id"] for i in recs}
    assert {i["id"] for i in recs[:3]} <= {_movie(i) for i in range(6, 12)}  # its own taste group's movies
    assert all(i["reason"] == "personalised" for i in recs[:3])
    assert any(b["id"] == _movie(7) for b in recs[0]["because"])  # explained by the like


def test_an_unlike_brings_the_movie_back_within_the_recheck_interval(timed_graph, settings):
    settings.MUSICBUD_FEED_SECONDS = 0.1
    settings.MUSICBUD_HISTORY_RECHECK_SECONDS, settings.MUSICBUD_HISTORY_RECHECK_BATCH_SECONDS = 0.5, 0.1
    live.start()
    top = ask("user_b1")[0]["id"]
    like("b1", top)
    wait_until(lambda: top not in {i["id"] for i in ask("user_b1")}, timeout=3)
    unlike("b1", top)
    took = wait_until(lambda: top in {i["id"] for i in ask("user_b1", n=8)}, timeout=5)
    assert took < 0.5 + 0.1 + 1.0  # the recheck interval and its batching, then one poll and one answer


def test_a_user_the_feed_brought_nothing_costs_no_graph_read(timed_graph, thread_hops):
    ask("user_b2")
    thread_hops.clear()
    for _ in range(5):
        ask("user_b2")
    assert thread_hops == []


def test_an_unknown_username_is_asked_about_once_and_again_as_soon_as_a_user_joins(timed_graph, settings,
                                                                                    thread_hops):
    settings.MUSICBUD_UNKNOWN_USER_SECONDS = 600.0  # only the feed can make the service ask again in this test
    hops = thread_hops
    live.poll()  # the feed has seen the graph's users as they are
    assert {i["reason"] for i in ask("user_latecomer")} <= {"trending", "popular"}
    assert hops.count("user_uid_get") == 1
    for _ in range(5):
        ask("user_latecomer")
    assert hops.count("user_uid_get") == 1  # remembered as unknown: no graph read per request
    graph_writes.users_upsert(rows=[{"uid": "latecomer", "username": "user_latecomer", "accounts": ["ImdbUser"]}])
    like("latecomer", _movie(8))
    settings.MUSICBUD_FEED_SECONDS = 0.1
    live.start()
    wait_until(lambda: ask("user_latecomer")[0]["reason"] == "personalised", timeout=5)  # not 600 s
    assert _movie(8) not in {i["id"] for i in ask("user_latecomer")}


def test_the_answer_cache_keys_on_the_users_history_version(timed_graph, settings):
    settings.MUSICBUD_FEED_SECONDS = 0.1
    live.start()
    answers().clear()
    before = ask("user_a3")
    version = live.user("a3").version
    like("a3", before[0]["id"])
    wait_until(lambda: live.user("a3").version > version, timeout=3)
    assert ask("user_a3") != before


def test_a_background_recheck_counts_only_the_types_the_users_asked_for(timed_graph, settings, monkeypatch):
    from app.services import recommendation_data_service as data
    from app.services.training import models_train

    anime = BY_KEY["anime"]  # a second served type, which these users never ask for
    graph_writes.items_upsert(content_type=anime, rows=[{"anime_id": i, "title": f"Anime {i}"} for i in range(6)])
    graph_writes.users_upsert(rows=[{"uid": u, "username": f"user_{u}", "accounts": ["ImdbUser", "MalUser"]}
                                    for u in GROUP_A])
    graph_writes.interactions_upsert(content_type=anime, rows=[
        {"user_uid": u, "item_id": (n + k) % 6, "rel": "TOP_ANIME"} for n, u in enumerate(GROUP_A) for k in range(3)])
    assert models_train(content_types=["anime"])["anime"] is True
    assert registry.get("anime") is not None and registry.get("movie") is not None
    live.stop()
    settings.MUSICBUD_HISTORY_RECHECK_SECONDS = 0  # every ask is due a check
    counted, real = [], data.history_sizes
    monkeypatch.setattr(data, "history_sizes", lambda *, content_types, uids: counted.append(
        ([ct.model_key for ct in content_types], sorted(uids))) or real(content_types=content_types, uids=uids))
    live._pending.clear()
    ask("user_a4")
    ask("user_a5")
    assert live.recheck() == 2
    assert counted == [(["movie"], ["a4", "a5"])]  # not anime: nobody asked for it
    assert live.user("a4").read_at.keys() == {"movie"}  # checked, unchanged: not again for a while


def test_on_a_graph_without_created_at_a_like_is_seen_when_the_user_asks_after_the_reread_interval(untimed_graph,
                                                                                                   settings):
    settings.MUSICBUD_HISTORY_REREAD_SECONDS = 0.3
    assert registry.current("movie").manifest["snapshot"]["untimed_edges"] > 0
    top = ask("user_a4")[0]["id"]
    like("a4", top, timed=False)
    took = wait_until(lambda: top not in {i["id"] for i in ask("user_a4")}, timeout=3)
    assert took < 0.3 + 0.5
    unlike("a4", top)
    took = wait_until(lambda: top in {i["id"] for i in ask("user_a4", n=8)}, timeout=3)
    assert took < 0.3 + 0.5


def test_on_a_graph_without_created_at_asking_reads_the_graph_at_most_once_an_interval(untimed_graph, settings,
                                                                                       monkeypatch):
    from app.services import recommendation_data_service as data

    settings.MUSICBUD_HISTORY_REREAD_SECONDS = 60.0
    reads = []
    real = data.histories_of_users
    monkeypatch.setattr(data, "histories_of_users", lambda **kw: reads.append(kw["uids"]) or real(**kw))
    for _ in range(10):
        ask("user_b5")
    assert reads == [["b5"]]


def test_a_new_user_with_one_like_is_personalised_on_a_graph_without_created_at_too(untimed_graph, settings):
    settings.MUSICBUD_HISTORY_REREAD_SECONDS = 0.0
    like("newcomer", _movie(2), timed=False)
    recs = ask("user_newcomer", n=3)
    assert all(i["reason"] == "personalised" for i in recs)
    assert {i["id"] for i in recs} <= {_movie(i) for i in range(6)} - {_movie(2)}

"""Discovery on a hand-built graph in the real Neo4j (app/services/recommendation_service.py with
app/services/filters.py, diversify.py, new_items.py and the trending link): twelve thriller fans like movies
m0..m5 (Thriller, 1990-1995), twelve comedy fans m6..m11 (Comedy, 2000-2005), all a year ago; m12 (Drama) got
three likes today. So the trending, filtered, diverse and new-item answers are known."""
import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from django.conf import settings

from app import graph
from app.content_types import BY_KEY
from app.services import graph_writes
from app.services import recommendation_service as service
from app.services.filters import ItemFilter
from app.services.live import live
from app.services.model_registry import registry
from app.services.training import models_train

pytestmark = pytest.mark.neo4j

MOVIES = BY_KEY["movies"]
THRILLER_FANS = [f"t{i}" for i in range(12)]
COMEDY_FANS = [f"c{i}" for i in range(12)]


def _movie(i):
    return f"tt{i:07d}"


def _genre(i):
    return "Thriller" if i < 6 else "Comedy" if i < 12 else "Drama"


@pytest.fixture(scope="module")
def discovery_graph(neo4j, tmp_path_factory):
    graph.query("MATCH (n) DETACH DELETE n")
    settings.MUSICBUD_MODEL_DIR = tmp_path_factory.mktemp("models")
    registry.__init__()
    graph_writes.items_upsert(content_type=MOVIES, rows=[
        {"imdb_id": _movie(i), "title": f"Movie {i}", "genres": [_genre(i)], "year": 1990 + i + (4 if i >= 6 else 0)}
        for i in range(13)])
    graph_writes.users_upsert(rows=[{"uid": u, "username": f"user_{u}", "accounts": ["ImdbUser"]}
                                    for u in THRILLER_FANS + COMEDY_FANS])
    year_ago = (datetime.now(timezone.utc) - timedelta(days=365)).timestamp()
    rows = []
    for group, offset in ((THRILLER_FANS, 0), (COMEDY_FANS, 6)):
        for n, user in enumerate(group):
            rows += [{"user_uid": user, "item_id": _movie(offset + (n + k) % 6), "rel": "LIKES", "created_at": year_ago}
                     for k in range(4)]
    rows += [{"user_uid": u, "item_id": _movie(12), "rel": "LIKES"} for u in COMEDY_FANS[:3]]  # today
    graph_writes.interactions_upsert(content_type=MOVIES, rows=rows)
    assert models_train(content_types=["movies"])["movie"] is True
    yield
    settings.MUSICBUD_NEW_ITEMS_SECONDS = 60.0


async def _items(**kwargs) -> list[dict]:
    return orjson.loads((await service.recommendations_for_user(**kwargs)).json.text)


async def _guest(**kwargs) -> list[dict]:
    return orjson.loads((await service.popular_items(**kwargs)).json.text)


def _genres(items):
    return {g for item in items for g in item["genres"]}


async def test_trending_ranks_a_burst_of_fresh_likes_above_an_old_larger_count(discovery_graph):
    trending = await _guest(content_type="movies", n=5, sort="trending")
    assert trending[0]["id"] == _movie(12) and trending[0]["reason"] == "trending"
    assert [item["reason"] for item in trending[1:]] == ["popular"] * 4  # nothing else liked lately
    popular = await _guest(content_type="movies", n=5)
    assert popular[0]["id"] != _movie(12) and {item["reason"] for item in popular} == {"popular"}


async def test_the_change_feed_refreshes_trending_between_trainings(discovery_graph):
    model = registry.get("movie")
    column = model.item_map[_movie(7)]
    before, version = float(model.trending.scores()[column]), model.trending.version
    live.apply_edges([{"id": "feed-1", "user": "t0", "type": "movie", "item": _movie(7), "weight": 5.0,
                       "t": datetime.now(timezone.utc), "rel": "LIKES"}])
    assert model.trending.version == version + 1 and float(model.trending.scores()[column]) > before + 4
    live.reset()


async def test_filters_never_return_a_wrong_genre_or_an_excluded_item_and_still_fill_n(discovery_graph):
    # a thriller fan's best items are thrillers; asked for comedies they get comedies, n of them
    comedies = await _items(username="user_t0", content_type="movies", n=4, item_filter=ItemFilter(
        genres=frozenset({"comedy"})))
    assert len(comedies) == 4 and _genres(comedies) == {"Comedy"}
    excluded = {_movie(4), _movie(5), _movie(12)}
    items = await _items(username="user_t0", content_type="movies", n=6,
                         item_filter=ItemFilter(exclude=frozenset(excluded)))
    assert len(items) == 6 and not excluded & {item["id"] for item in items}
    old = await _guest(content_type="movies", n=20, item_filter=ItemFilter(year_min=1991, year_max=1995))
    assert sorted(item["year"] for item in old) == [1991, 1992, 1993, 1994, 1995]


async def test_similar_items_are_filtered_too(discovery_graph):
    similar = await service.similar_items(content_type="movies", item_id=_movie(1), n=3,
                                          item_filter=ItemFilter(genres=frozenset({"comedy"})))
    assert len(similar) == 3 and _genres(similar) == {"Comedy"}


async def test_diversity_zero_is_todays_answer_byte_for_byte_and_one_gives_more_genres(discovery_graph):
    today = (await service.recommendations_for_user(username="user_t0", content_type="movies", n=3)).json.text
    service.answers().clear()
    zero = (await service.recommendations_for_user(username="user_t0", content_type="movies", n=3,
                                                   diversity=0.0)).json.text
    assert zero == today
    diverse = await _items(username="user_t0", content_type="movies", n=3, diversity=1.0)
    assert len(_genres(diverse)) > len(_genres(orjson.loads(today)))


async def test_a_new_item_added_after_training_is_recommended_to_a_user_of_its_genre(discovery_graph):
    settings.MUSICBUD_NEW_ITEMS_SECONDS = 0.0  # look for new items at every request
    graph_writes.items_upsert(content_type=MOVIES, rows=[
        {"imdb_id": _movie(99), "title": "A new thriller", "genres": ["Thriller"], "year": 2026}])
    for _ in range(100):  # the worker looks again in the background: the answer after that look has it
        for_fan = await _items(username="user_t0", content_type="movies", n=4)
        if _movie(99) in [item["id"] for item in for_fan]:
            break
        await asyncio.sleep(0.1)
    assert _movie(99) in [item["id"] for item in for_fan]
    new = next(item for item in for_fan if item["id"] == _movie(99))
    assert new["title"] == "A new thriller" and new["reason"] == "personalised"
    similar = await service.similar_items(content_type="movies", item_id=_movie(1), n=3)
    assert _movie(99) in [item["id"] for item in similar]
    neighbours = await service.similar_items(content_type="movies", item_id=_movie(99), n=3)
    assert _genres(neighbours) == {"Thriller"}
    no_thrillers = await _items(username="user_t0", content_type="movies", n=4,
                                item_filter=ItemFilter(genres=frozenset({"comedy"})))
    assert _movie(99) not in [item["id"] for item in no_thrillers]

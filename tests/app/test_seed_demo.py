"""manage.py seed_demo and app/services/demo_data.py: a deterministic, idempotent synthetic graph."""
from collections import Counter
from datetime import datetime, timezone
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from app import graph
from app.content_types import BY_KEY, CONTENT_TYPES, account_pattern
from app.services.demo_data import CLUSTERS, IN_CLUSTER, demo_graph_generate
from tests.app.test_graph_writes import snapshot

pytestmark = pytest.mark.neo4j

SMALL = dict(users=40, items_per_type=30, interactions_per_user=12, until=datetime(2025, 6, 1, tzinfo=timezone.utc))


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", **{**SMALL, "seed": 42, **options}, stdout=out, verbosity=0)
    return out.getvalue()


def counts() -> dict[str, int]:
    """Nodes per label (a node with several labels counts under each) and edges per type."""
    rows = graph.query("MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n "
                       "UNION ALL MATCH ()-[r]->() RETURN type(r) AS label, count(*) AS n")
    return {r["label"]: r["n"] for r in rows}


def test_the_same_seed_gives_the_same_graph_and_another_seed_another(clean_graph, db):
    seed()
    first = snapshot()
    graph.query("MATCH (n) DETACH DELETE n")
    seed()
    assert snapshot() == first

    graph.query("MATCH (n) DETACH DELETE n")
    seed(seed=43)
    assert snapshot()[1] != first[1]
    found = counts()
    assert {ct.label: found[ct.label] for ct in CONTENT_TYPES} == {ct.label: 30 for ct in CONTENT_TYPES}
    assert found["ParentUser"] == 42 and found["LikedItem"] == 4 * 30  # tracks, artists, albums, genres
    assert found["User"] == sum(found.get(label, 0) for label in ("MalUser", "SpotifyUser", "LastfmUser",
                                                                    "YtmusicUser"))


def test_seeding_twice_changes_nothing(clean_graph, db):
    seed()
    first, first_counts = snapshot(), counts()
    seed()
    assert counts() == first_counts
    assert snapshot() == first


def test_every_content_type_gets_items_and_edges_of_its_table(clean_graph, db):
    out = seed()

    assert "Seeded 42 users, 210 items" in out
    for ct in CONTENT_TYPES:
        rows = graph.query(
            f"MATCH (i:{ct.label}) WITH count(i) AS items "
            f"OPTIONAL MATCH {account_pattern(ct)}-[r]->(:{ct.label}) "
            f"RETURN items, collect(DISTINCT type(r)) AS rels, count(r) AS edges, "
            f"all(x IN collect(r) WHERE x.created_at IS NOT NULL) AS dated")
        assert rows[0]["items"] == 30, ct.key
        assert rows[0]["edges"] > 0 and rows[0]["dated"], ct.key
        assert set(rows[0]["rels"]) <= set(ct.edges), ct.key
    takes = graph.query("MATCH (p:ParentUser) RETURN count(p) AS users, count(p.demo_taste) AS tasted, "
                        "min(p.demo_taste) AS low, max(p.demo_taste) AS high")
    assert takes[0]["users"] == takes[0]["tasted"] == 42
    assert 0 <= takes[0]["low"] <= takes[0]["high"] < CLUSTERS


def test_the_demo_logins_exist_in_django_and_in_the_graph_with_history(clean_graph, db, monkeypatch):
    monkeypatch.setenv("MUSICBUD_DEMO_USER_PASSWORD", "from-the-env-123")
    monkeypatch.delenv("MUSICBUD_DEMO_ADMIN_PASSWORD", raising=False)

    out = seed()

    User = get_user_model()
    admin, demo = User.objects.get(username="admin"), User.objects.get(username="demo")
    assert admin.is_staff and not demo.is_staff
    assert demo.check_password("from-the-env-123")
    generated = next(line for line in out.splitlines() if "'admin' with password" in line).split()[6]
    assert admin.check_password(generated)
    per_type = {ct.label: graph.query(f"MATCH (:ParentUser {{username: 'demo'}})-->()-[r]->(:{ct.label}) "
                                      f"RETURN count(r) AS n")[0]["n"] for ct in CONTENT_TYPES}
    assert all(per_type.values()), per_type
    assert graph.query("MATCH (:ParentUser {username: 'admin'})-->()-[r]->() RETURN count(r) > 0 AS some") == [
        {"some": True}]

    monkeypatch.setenv("MUSICBUD_DEMO_USER_PASSWORD", "another-one-456")
    again = seed()
    assert "'demo' exists: left as it is" in again
    demo.refresh_from_db()
    assert demo.check_password("from-the-env-123")  # never reset


def test_if_empty_does_nothing_once_a_user_exists(clean_graph, db):
    graph.query("CREATE (:ParentUser {uid: 'someone', username: 'someone'})")
    assert "nothing seeded" in seed(if_empty=True)
    assert counts() == {"ParentUser": 1}
    assert not get_user_model().objects.filter(username="demo").exists()


def test_taste_drives_choices_in_every_domain_and_some_users_lack_one():
    demo = demo_graph_generate(seed=5, users=2000, items_per_type=300, interactions_per_user=20,
                               until=datetime(2025, 6, 1, tzinfo=timezone.utc))
    taste = {u["uid"]: u["demo_taste"] for u in demo.users}
    domains = {ct.domain for ct in CONTENT_TYPES}
    lacking = sum(1 for u in demo.users if len({ct.domain for ct in CONTENT_TYPES
                                                 if set(a.label for a in ct.accounts) & set(u["accounts"])})
                  < len(domains))
    assert 0.10 < lacking / len(demo.users) < 0.20

    for ct in CONTENT_TYPES:
        # the cluster of an item: the taste most of its users share
        fans: dict[object, Counter] = {}
        for row in demo.interactions[ct.key]:
            fans.setdefault(row["item_id"], Counter())[taste[row["user_uid"]]] += 1
        item_taste = {item: c.most_common(1)[0][0] for item, c in fans.items()}
        same = np.mean([item_taste[r["item_id"]] == taste[r["user_uid"]] for r in demo.interactions[ct.key]])
        assert same > IN_CLUSTER * 0.8, ct.key


def test_activity_and_popularity_are_long_tailed_and_times_fall_in_the_last_two_years():
    until = datetime(2025, 6, 1, tzinfo=timezone.utc)
    demo = demo_graph_generate(seed=5, users=2000, items_per_type=300, interactions_per_user=20, until=until)

    per_user = np.array(sorted(Counter(r["user_uid"] for rows in demo.interactions.values() for r in rows).values()))
    assert abs(per_user.mean() - 20) < 2
    assert per_user[-20:].mean() > 4 * np.median(per_user)  # the busiest 1% do several times the median
    per_item = np.array(sorted(Counter(r["item_id"] for r in demo.interactions["movies"]).values()))
    assert per_item[-3:].mean() > 8 * np.median(per_item)
    stamps = [r["created_at"] for rows in demo.interactions.values() for r in rows]
    assert until.timestamp() - 730 * 86400 <= min(stamps) and max(stamps) <= until.timestamp()


def test_the_demo_is_a_musicbud_graph_tracks_link_their_artists_and_albums_and_music_comes_from_three_accounts(
        clean_graph, db):
    seed()
    tracks = graph.query("MATCH (t:Track) RETURN count(t) AS n, count { (t)-[:PERFORMED_BY]->(:Artist) } > 0 AS x, "
                         "all(t IN collect(t) WHERE EXISTS { (t)-[:BELONGS_TO]->(:Album) }) AS albums")
    assert tracks[0]["albums"]
    kinds = graph.query("MATCH (:ParentUser)-[c:CONNECTED_TO_SPOTIFY|CONNECTED_TO_LASTFM|CONNECTED_TO_YTMUSIC]->(a) "
                        "RETURN type(c) AS rel, count(*) AS n")
    assert {k["rel"] for k in kinds} == {"CONNECTED_TO_SPOTIFY", "CONNECTED_TO_LASTFM", "CONNECTED_TO_YTMUSIC"}
    both = graph.query("MATCH (p:ParentUser {username: 'demo'})-[:CONNECTED_TO_SPOTIFY]->(s), "
                       "(p)-[:CONNECTED_TO_LASTFM]->(l) RETURN count { (s)-->(:Track) } > 0 AND "
                       "count { (l)-->(:Track) } > 0 AS both")
    assert both == [{"both": True}]  # one history over two accounts
    from app.services.recommendation_data_service import items_by_ids

    some = graph.query("MATCH (t:Track) RETURN t.uid AS id LIMIT 3")
    details = items_by_ids(content_type=BY_KEY["tracks"], ids=[r["id"] for r in some])
    assert all(d["artists"] and d["artist"] == ", ".join(d["artists"]) and d["album"] for d in details.values())

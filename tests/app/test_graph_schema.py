import pytest

from app import graph
from app.content_types import CONTENT_TYPES
from app.services.graph_schema import constraints_install, constraints_list, indexes_list

pytestmark = pytest.mark.neo4j


def test_every_key_has_a_uniqueness_constraint(neo4j):
    present = {(c["label"], c["property"]) for c in constraints_list()}
    for ct in CONTENT_TYPES:
        assert (ct.label, ct.id_property) in present
        for account in ct.accounts:
            assert (account.label, account.key) in present
    assert ("ParentUser", "uid") in present
    assert ("ImdbUser", "user_id") in present and ("MalUser", "user_id") in present


def test_usernames_are_indexed_not_constrained_as_musicbud_declares_no_uniqueness_there(neo4j):
    assert ("ParentUser", "username") not in {(c["label"], c["property"]) for c in constraints_list()}
    assert ("ParentUser", "username") in {(i["label"], i["property"]) for i in indexes_list()}


def test_every_edge_type_is_indexed_on_created_at_for_the_change_feed(neo4j):
    indexed = {i["label"] for i in indexes_list() if i["entity"] == "RELATIONSHIP" and i["property"] == "created_at"}
    assert {rel for ct in CONTENT_TYPES for rel in ct.edges} <= indexed


def test_installing_twice_changes_nothing_and_logs_no_error(neo4j, caplog):
    before = sorted(constraints_install())
    with caplog.at_level("INFO"):
        assert sorted(constraints_install()) == before
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
    assert "error" not in caplog.text.lower()


def test_a_graph_whose_keys_are_not_unique_gets_an_index_there_and_a_warning(clean_graph, caplog):
    graph.query("DROP CONSTRAINT `constraint_unique_SpotifyImage_url` IF EXISTS")
    graph.query("CREATE (:SpotifyImage {url: 'same'}), (:SpotifyImage {url: 'same'})")
    try:
        with caplog.at_level("WARNING"):
            constraints_install()  # does not raise
        assert "SpotifyImage.url is not unique" in caplog.text
        assert ("SpotifyImage", "url") in {(i["label"], i["property"]) for i in indexes_list()}
    finally:
        graph.query("MATCH (n:SpotifyImage) DETACH DELETE n")
        graph.query("DROP INDEX `index_SpotifyImage_url` IF EXISTS")
        constraints_install()

import pytest

from app.content_types import CONTENT_TYPES
from app.services.graph_schema import constraints_install, constraints_list

pytestmark = pytest.mark.neo4j


def test_every_key_has_a_uniqueness_constraint(neo4j):
    present = {(c["label"], c["property"]) for c in constraints_list()}
    for ct in CONTENT_TYPES:
        assert (ct.label, ct.id_property) in present
        assert (ct.account_label, "uid") in present
    assert ("ParentUser", "uid") in present
    assert ("ParentUser", "username") in present


def test_installing_twice_changes_nothing(neo4j):
    before = sorted(constraints_install())
    assert sorted(constraints_install()) == before

"""The local Neo4j launcher: starts, answers on Bolt with its password only, listens on loopback, stops."""
import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError

pytestmark = pytest.mark.neo4j


def test_it_answers_with_the_right_password(neo4j_server):
    with GraphDatabase.driver(neo4j_server.bolt_url, auth=("neo4j", neo4j_server.password)) as d:
        records, _, _ = d.execute_query("RETURN 1 AS one")
    assert records[0]["one"] == 1


def test_it_refuses_a_wrong_password(neo4j_server):
    with GraphDatabase.driver(neo4j_server.bolt_url, auth=("neo4j", "not-the-password")) as d:
        with pytest.raises(AuthError):
            d.verify_connectivity()


def test_it_refuses_the_default_password(neo4j_server):
    with GraphDatabase.driver(neo4j_server.bolt_url, auth=("neo4j", "neo4j")) as d:
        with pytest.raises(AuthError):
            d.verify_connectivity()


def test_it_listens_on_loopback_only(neo4j_server):
    import psutil

    listening = [c for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == neo4j_server.port]
    assert listening, "nothing listens on the Bolt port"
    assert all(c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1") for c in listening)


def test_it_stops_cleanly_on_sigterm(tmp_path):
    from scripts import neo4j_local

    instance = neo4j_local.start(data_dir=tmp_path / "db", port=neo4j_local.free_port(), password="another-pass-123",
                                 heap="512m")
    instance.stop()
    assert instance.process.returncode in (0, 143)  # 143: the JVM's exit after SIGTERM ran its shutdown hook
    assert "NEO4J_STOPPED" in (tmp_path / "db" / "launcher.log").read_text()
    assert not neo4j_local.port_in_use(instance.port)

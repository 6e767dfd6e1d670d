"""Test-wide fixtures. Tests that need the graph use `neo4j` (a throwaway Neo4j Community instance, started
once per test session on a free port with a temporary data dir) and `clean_graph` (that instance, emptied)."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MUSICBUD_SHARED_DATA", ROOT.parent / "shared" / "data"))

# tests/settings.py (loaded first, by pytest-django) chose the run's temporary directory
_TMP = Path(os.environ.setdefault("MUSICBUD_TEST_TMP", tempfile.mkdtemp(prefix="musicbud-tests-")))

from scripts import neo4j_local  # noqa: E402


@pytest.fixture(scope="session")
def neo4j_server():
    """A Neo4j of the tests' own: free port, temporary data dir, random password. Stopped at the end."""
    import secrets

    instance = neo4j_local.start(
        data_dir=_TMP / "neo4j", port=neo4j_local.free_port(), password=secrets.token_urlsafe(16), heap="768m"
    )
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def neo4j(neo4j_server, django_db_blocker):
    """Django settings pointed at the throwaway Neo4j, constraints installed."""
    from django.conf import settings

    from app import graph
    from app.services.graph_schema import constraints_install

    settings.NEO4J_BOLT_URL = neo4j_server.bolt_url
    settings.NEO4J_PASSWORD = neo4j_server.password
    graph.close()
    constraints_install()
    yield neo4j_server
    graph.close()


@pytest.fixture
def clean_graph(neo4j):
    """The throwaway Neo4j with every node and edge removed (constraints kept)."""
    from app import graph

    graph.query("MATCH (n) DETACH DELETE n")
    yield neo4j


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def thread_hops(monkeypatch) -> list[str]:
    """The names of the functions asyncio.to_thread runs during the test (what leaves the event loop: a graph
    read, a file), in order."""
    import asyncio

    hops: list[str] = []
    real = asyncio.to_thread

    async def counted(fn, *args, **kwargs):
        hops.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    return hops

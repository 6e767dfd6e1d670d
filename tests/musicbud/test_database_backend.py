"""The auth database is the one DATABASE_URL names (SQLite under var/ by default; tests/musicbud/test_postgres.py
runs the auth tests with a PostgreSQL URL)."""
import os

import pytest

pytestmark = pytest.mark.django_db


def test_the_auth_database_is_the_one_database_url_names():
    from django.db import connection

    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected
    with connection.cursor() as cursor:  # and it answers
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1

"""musicbud/env.py: the typed readers of the environment refuse nonsense values, naming the variable."""
from __future__ import annotations

import os
import stat

import pytest

from musicbud.env import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_url,
    secret_from_env_or_file,
)


@pytest.mark.parametrize("raw, value", [("1", True), ("true", True), (" Yes ", True), ("on", True),
                                        ("0", False), ("false", False), ("NO", False), ("off", False)])
def test_a_boolean_reads_the_usual_words(monkeypatch, raw, value):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", not value) is value


@pytest.mark.parametrize("raw", ["maybe", "2", "yes please", "ja"])
def test_a_boolean_refuses_anything_else(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    with pytest.raises(ConfigError, match="X_FLAG"):
        env_bool("X_FLAG", False)


def test_an_unset_or_empty_variable_is_the_default(monkeypatch):
    monkeypatch.delenv("X_NUM", raising=False)
    assert env_int("X_NUM", 7) == 7 and env_float("X_NUM", 0.5) == 0.5 and env_bool("X_NUM", True) is True
    monkeypatch.setenv("X_NUM", "")
    assert env_int("X_NUM", 7) == 7 and env_list("X_NUM", ["a"]) == ["a"]


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "0x10", "ten"])
def test_an_integer_refuses_what_is_not_one(monkeypatch, raw):
    monkeypatch.setenv("X_NUM", raw)
    with pytest.raises(ConfigError, match="X_NUM"):
        env_int("X_NUM", 1)


@pytest.mark.parametrize("raw", ["0", "65536", "-1"])
def test_an_integer_refuses_what_is_out_of_its_range(monkeypatch, raw):
    monkeypatch.setenv("X_PORT", raw)
    with pytest.raises(ConfigError, match="X_PORT"):
        env_int("X_PORT", 7687, minimum=1, maximum=65535)


@pytest.mark.parametrize("raw", ["fast", "-0.5", ""])
def test_a_number_refuses_nonsense_and_values_below_its_minimum(monkeypatch, raw):
    monkeypatch.setenv("X_SECONDS", raw)
    if raw == "":
        assert env_float("X_SECONDS", 1.0, minimum=0.0) == 1.0
        return
    with pytest.raises(ConfigError, match="X_SECONDS"):
        env_float("X_SECONDS", 1.0, minimum=0.0)


@pytest.mark.parametrize("raw", ["60/min", "10/m", "5/s", "100/hour", "1000/day"])
def test_a_rate_reads_what_drf_reads(monkeypatch, raw):
    monkeypatch.setenv("X_RATE", raw)
    assert env_rate("X_RATE", "1/min") == raw


@pytest.mark.parametrize("raw", ["abc", "60", "60/fortnight", "/min", "sixty/min", "60/min/extra"])
def test_a_rate_refuses_what_drf_would_fail_on_at_the_first_request(monkeypatch, raw):
    monkeypatch.setenv("X_RATE", raw)
    with pytest.raises(ConfigError, match="X_RATE"):
        env_rate("X_RATE", "1/min")


@pytest.mark.parametrize("raw", ["localhost:7687", "http://127.0.0.1:7474", "bolt://", "127.0.0.1"])
def test_a_url_refuses_another_scheme_or_none(monkeypatch, raw):
    monkeypatch.setenv("X_URL", raw)
    with pytest.raises(ConfigError, match="X_URL"):
        env_url("X_URL", "bolt://127.0.0.1:7687", schemes=("bolt", "neo4j"))


def test_a_secret_is_generated_once_kept_0600_and_read_back(monkeypatch, tmp_path):
    monkeypatch.delenv("X_SECRET", raising=False)
    path = tmp_path / "var" / "x_secret"
    first = secret_from_env_or_file("X_SECRET", path)
    assert len(first) >= 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_from_env_or_file("X_SECRET", path) == first


def test_a_secret_from_the_environment_wins_and_is_never_written(monkeypatch, tmp_path):
    monkeypatch.setenv("X_SECRET", "s" * 40)
    assert secret_from_env_or_file("X_SECRET", tmp_path / "x_secret") == "s" * 40
    assert not (tmp_path / "x_secret").exists()


@pytest.mark.parametrize("raw", ["secret", "changeme", "x" * 31])
def test_a_short_secret_is_refused(monkeypatch, tmp_path, raw):
    monkeypatch.setenv("X_SECRET", raw)
    with pytest.raises(ConfigError, match="X_SECRET"):
        secret_from_env_or_file("X_SECRET", tmp_path / "x_secret")
    monkeypatch.delenv("X_SECRET")
    (tmp_path / "x_secret").write_text(raw + "\n")
    with pytest.raises(ConfigError, match="x_secret"):
        secret_from_env_or_file("X_SECRET", tmp_path / "x_secret")

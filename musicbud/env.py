"""Small typed readers of the environment that refuse nonsense values (after healthchecks' hc/settings.py)."""
from __future__ import annotations

import os
import re
from pathlib import Path


class ConfigError(ValueError):
    pass


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} is outside [{minimum}, {maximum}]")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} is below {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as 60/min (DRF itself would fail only on the first throttled request, with a 500)."""
    value = env_str(name, default).strip()
    if not _RATE.match(value):
        raise ConfigError(f"{name}={value!r} is not a rate: use <number>/<second|minute|hour|day>, e.g. 60/min")
    return value


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_duration(name: str, default: str) -> float | None:
    """A duration such as 30s, 60m, 2h, 1d in seconds; "", "off" or "0" mean none (None)."""
    value = env_str(name, default).strip().lower()
    if value in ("", "off", "0"):
        return None
    match = _DURATION.match(value)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{name}={value!r} is not a duration: use <number><s|m|h|d>, e.g. 60m, or off")
    return float(match.group(1)) * _UNITS[match.group(2)]


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default).strip()
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in schemes or not rest:
        raise ConfigError(f"{name}={value!r} is not a URL with one of the schemes {', '.join(schemes)}")
    return value


def _long_enough(name: str, value: str, min_length: int) -> str:
    if len(value) < min_length:
        raise ConfigError(f"{name} is {len(value)} characters long: use a random secret of at least {min_length} "
                          "(or leave it unset to have one generated)")
    return value


def secret_from_env_or_file(name: str, path: Path, *, min_length: int = 32) -> str:
    """The variable's value, else a generated secret kept (0600) in `path` so it survives restarts. A secret
    shorter than min_length is refused (these sign tokens and model files with HMAC-SHA256)."""
    value = os.environ.get(name)
    if value:
        return _long_enough(name, value, min_length)
    if path.exists():
        return _long_enough(str(path), path.read_text().strip(), min_length)
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value

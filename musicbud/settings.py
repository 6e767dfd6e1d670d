"""Django settings for MusicBud Recommendations. Every setting reads the environment; see README's table."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from app.services import answer_cache  # a plain module: the answer cache's default size
from musicbud.env import (
    ConfigError,
    env_bool,
    env_duration,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
    env_url,
    secret_from_env_or_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MUSICBUD_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = secret_from_env_or_file("DJANGO_SECRET_KEY", VAR_DIR / "django_secret_key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "adrf",
    "drf_spectacular",
    "app",
]

MIDDLEWARE = [  # Django's Security/CommonMiddleware, with their hooks run on the event loop (musicbud.lean.py)
    "musicbud.lean.SecurityMiddleware",
    "musicbud.lean.CommonMiddleware",
]

ROOT_URLCONF = "musicbud.urls"
ASGI_APPLICATION = "musicbud.asgi.application"
WSGI_APPLICATION = "musicbud.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'auth.sqlite3'}"), conn_max_age=60
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MUSICBUD_MAX_BODY_BYTES", 64 * 1024, minimum=1024)

# --- Neo4j -------------------------------------------------------------------------------------------
NEO4J_PORT = env_int("NEO4J_PORT", 7687, minimum=1, maximum=65535)
NEO4J_BOLT_URL = env_url("NEO4J_BOLT_URL", f"bolt://127.0.0.1:{NEO4J_PORT}",
                         schemes=("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"))
NEO4J_USER = env_str("NEO4J_USER", "neo4j")
NEO4J_PASSWORD = os.environ.get("NEO4J_PASSWORD") or (
    (VAR_DIR / "neo4j_password").read_text().strip() if (VAR_DIR / "neo4j_password").exists() else ""
)
NEO4J_DATABASE = env_str("NEO4J_DATABASE", "neo4j")

# --- Recommendations ---------------------------------------------------------------------------------
MUSICBUD_MODEL_DIR = Path(env_str("MUSICBUD_MODEL_DIR", "/tmp/musicbud_models"))
MUSICBUD_MODEL_HMAC_KEY = secret_from_env_or_file("MUSICBUD_MODEL_HMAC_KEY", VAR_DIR / "model_hmac_key")
# LightFM parameters: the tuned defaults live in ai.recommendation_engine.SERVICE_DEFAULTS (see bench/quality.py);
# each variable set here overrides one of them.
_LIGHTFM_ENV = {
    "no_components": ("LIGHTFM_COMPONENTS", int), "epochs": ("LIGHTFM_EPOCHS", int),
    "learning_rate": ("LIGHTFM_LEARNING_RATE", float), "item_alpha": ("LIGHTFM_ITEM_ALPHA", float),
    "user_alpha": ("LIGHTFM_USER_ALPHA", float), "max_sampled": ("LIGHTFM_MAX_SAMPLED", int),
}
LIGHTFM_OVERRIDES = {
    param: (env_int(var, 0, minimum=1) if kind is int else env_float(var, 0.0, minimum=0.0))
    for param, (var, kind) in _LIGHTFM_ENV.items() if os.environ.get(var)
}
LIGHTFM_THREADS = env_int("LIGHTFM_THREADS", os.cpu_count() or 1, minimum=1)
LIGHTFM_RANDOM_STATE = env_int("LIGHTFM_RANDOM_STATE", 42)
# A training run's fits (each type, its refit, the taste model) may do at most this many interaction-epochs in
# all: a MovieLens-100k-sized graph keeps the tuned epochs, a bigger one gets proportionally fewer (not under
# LIGHTFM_MIN_EPOCHS), so 1M interactions train in about a minute on 2 cores. 0: always the configured epochs.
LIGHTFM_EPOCH_BUDGET = env_int("LIGHTFM_EPOCH_BUDGET", 18_000_000, minimum=0)
LIGHTFM_MIN_EPOCHS = env_int("LIGHTFM_MIN_EPOCHS", 5, minimum=1)
MUSICBUD_EVAL_HOLDOUT = env_float("MUSICBUD_EVAL_HOLDOUT", 0.2, minimum=0.0)
MUSICBUD_EVAL_USERS = env_int("MUSICBUD_EVAL_USERS", 1000, minimum=0)
# Below this many interactions a type is fitted twice: once without the held-out slice (to measure it),
# then on everything (the model served). Above it the measured model is served, to keep training fast.
MUSICBUD_REFIT_MAX_INTERACTIONS = env_int("MUSICBUD_REFIT_MAX_INTERACTIONS", 250_000, minimum=0)
# --- Model selection (issue 14: ai/model_selection.py) -----------------------------------------------------
from ai import model_selection  # noqa: E402  (no Django: its defaults, so bench/quality.py uses the same)

# The candidates every training fits per type on a validation split of its training part, serving the best
# (popularity is always scored too): any of lightfm, lightfm_hybrid, ease, als, bpr, blend, popularity.
MUSICBUD_CANDIDATES = env_list("MUSICBUD_CANDIDATES", list(model_selection.DEFAULT_CANDIDATES))
_UNKNOWN_CANDIDATES = sorted(set(MUSICBUD_CANDIDATES) - set(model_selection.CANDIDATE_NAMES))
if _UNKNOWN_CANDIDATES:
    raise ConfigError(f"MUSICBUD_CANDIDATES: unknown candidate(s) {', '.join(_UNKNOWN_CANDIDATES)}; use "
                      f"{', '.join(model_selection.CANDIDATE_NAMES)}")
# the validation split: this share of the items of at most this many users of the training part
MUSICBUD_SELECT_VALIDATION = env_float("MUSICBUD_SELECT_VALIDATION", model_selection.SELECT_FRACTION, minimum=0.0)
MUSICBUD_SELECT_USERS = env_int("MUSICBUD_SELECT_USERS", model_selection.SELECT_USERS, minimum=0)
# above this many interactions in a type's fit part, the candidates are fitted on a sample of users holding about
# this many (validation and held-out users always in it) and the winner is fitted again on every interaction:
# a training's cost stays about one full fit per type plus a bounded selection. 0: candidates see every user.
MUSICBUD_SELECT_FIT_INTERACTIONS = env_int("MUSICBUD_SELECT_FIT_INTERACTIONS",
                                           model_selection.SELECT_FIT_INTERACTIONS, minimum=0)
# LightFM hybrid (item features) is a candidate of types with at most this many interactions: it is the costliest
# fit and, with enough interactions per item, identity factors learn what the features say. 0: always a candidate.
MUSICBUD_HYBRID_MAX_INTERACTIONS = env_int("MUSICBUD_HYBRID_MAX_INTERACTIONS", model_selection.HYBRID_MAX_INTERACTIONS,
                                           minimum=0)
# EASE inverts an items x items matrix: types with more items leave it out (8,000: ~1 GB while fitting)
MUSICBUD_EASE_MAX_ITEMS = env_int("MUSICBUD_EASE_MAX_ITEMS", model_selection.EASE_MAX_ITEMS, minimum=1)
# a candidate whose serving arrays exceed this many MB is scored but never served: 7 types of the 1M graph (50k
# users, 20k items) at 20 MB each keep a worker with every model loaded under 500 MB (bench/memory.py)
MUSICBUD_MODEL_MAX_MB = env_float("MUSICBUD_MODEL_MAX_MB", model_selection.MODEL_MAX_MB, minimum=0.0)
MUSICBUD_MODEL_RELOAD_SECONDS = env_float("MUSICBUD_MODEL_RELOAD_SECONDS", 1.0, minimum=0.0)
# Mounts the seed's per-request design at /v1/bench/seed-baseline/<type>/ for bench/serving.py; never in production.
MUSICBUD_BENCH_BASELINE = env_bool("MUSICBUD_BENCH_BASELINE", False)
# Each server worker loads every saved model when it starts, before its first request (musicbud/asgi.py).
MUSICBUD_PRELOAD_MODELS = env_bool("MUSICBUD_PRELOAD_MODELS", True)
# Each server worker keeps the JSON of the answers it gave known users, until their model is replaced
# (app/services/answer_cache.py): this many MB at most, least recently used out first. 0: no cache.
MUSICBUD_ANSWER_CACHE_MB = env_float("MUSICBUD_ANSWER_CACHE_MB", answer_cache.DEFAULT_MAX_MB, minimum=0.0)

# What users did since training counts at once (app/services/live.py). The change feed reads edges newer than
# its watermark every MUSICBUD_FEED_SECONDS when the graph's edge counts moved, and every
# MUSICBUD_FEED_FULL_SECONDS whatever they say (re-reading the last MUSICBUD_FEED_OVERLAP_SECONDS for writers whose
# clocks lag), at most MUSICBUD_FEED_BATCH edges per edge type a read. Where the feed cannot follow (edges without
# created_at), a user's history is re-read when they ask, at most every MUSICBUD_HISTORY_REREAD_SECONDS; where it
# can, every MUSICBUD_HISTORY_RECHECK_SECONDS in the background (what bounds how long an unlike goes unseen).
MUSICBUD_LIVE = env_bool("MUSICBUD_LIVE", True)  # a server worker follows the graph (make run, uvicorn)
MUSICBUD_FEED_SECONDS = env_float("MUSICBUD_FEED_SECONDS", 0.25, minimum=0.01)
MUSICBUD_FEED_OVERLAP_SECONDS = env_float("MUSICBUD_FEED_OVERLAP_SECONDS", 2.0, minimum=0.0)
MUSICBUD_FEED_FULL_SECONDS = env_float("MUSICBUD_FEED_FULL_SECONDS", 2.0, minimum=0.0)
MUSICBUD_FEED_BATCH = env_int("MUSICBUD_FEED_BATCH", 5000, minimum=10)
MUSICBUD_HISTORY_REREAD_SECONDS = env_float("MUSICBUD_HISTORY_REREAD_SECONDS", 1.0, minimum=0.0)
MUSICBUD_HISTORY_RECHECK_SECONDS = env_float("MUSICBUD_HISTORY_RECHECK_SECONDS", 60.0, minimum=0.0)
# those background checks run in batches this often (or once 1,000 users wait): one query per batch
MUSICBUD_HISTORY_RECHECK_BATCH_SECONDS = env_float("MUSICBUD_HISTORY_RECHECK_BATCH_SECONDS", 1.0, minimum=0.0)
MUSICBUD_LIVE_USERS = env_int("MUSICBUD_LIVE_USERS", 200_000, minimum=1)
# A username the graph does not know is asked about again after this many seconds, not on every request.
MUSICBUD_UNKNOWN_USER_SECONDS = env_float("MUSICBUD_UNKNOWN_USER_SECONDS", 60.0, minimum=0.0)

# Each server worker starts a training job when the last training is this old (app/services/training_jobs.py;
# one job at a time across workers and processes). Off when unset; `make run` sets 60m.
MUSICBUD_TRAIN_EVERY = env_duration("MUSICBUD_TRAIN_EVERY", "off")

# --- API ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["app.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "app.exception_handlers.envelope_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "guest": env_rate("MUSICBUD_GUEST_RATE", "60/min"),
        "login": env_rate("MUSICBUD_LOGIN_RATE", "10/min"),
        "feedback": env_rate("MUSICBUD_FEEDBACK_RATE", "120/min"),
    },
    "UNAUTHENTICATED_USER": None,
}
SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 60, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MusicBud Recommendations API",
    "DESCRIPTION": "Movies, manga, anime, music and buds recommended from the MusicBud graph.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}
# --- Shared state (several hosts: app/services/shared_state.py) ---------------------------------------
# REDIS_URL: the Redis every host shares (throttle counts, the training lock and status, new-model news). Unset: the
# Redis `make run` started (its URL in VAR_DIR/redis_url), else none: one host's files do it all (file cache,
# file lock). A configured Redis that is down: serving goes on (health says degraded), trainings answer 503.
_REDIS_URL_FILE = VAR_DIR / "redis_url"
REDIS_URL = (env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix")) if os.environ.get("REDIS_URL")
             else _REDIS_URL_FILE.read_text().strip() if _REDIS_URL_FILE.exists() else "")


def _redis_no_retry():
    """No retries (redis-py's default backs off for seconds): a throttle falls back to this host's files at once."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


_THROTTLE_FILES = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                   "LOCATION": str(VAR_DIR / "throttle_cache")}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Throttling counts must hold across uvicorn workers (a small file cache under var/) and, with Redis, hosts.
    "throttle": ({"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                  "KEY_PREFIX": "musicbud:throttle",
                  "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 2.0, "retry": _redis_no_retry()}}
                 if REDIS_URL else _THROTTLE_FILES),
    "throttle_local": _THROTTLE_FILES,  # while Redis is down
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("MUSICBUD_LOG_LEVEL", "INFO")},
    "loggers": {"neo4j": {"level": "WARNING"}, "django.request": {"level": "ERROR"}},
}

# --- Admin: dashboard, metrics, docs (app/views/dashboard_views.py, app/services/metrics.py) -----------------
# The dashboard's session login (sessions, auth and CSRF middleware wrap its views alone, never the API's hot
# path); Swagger UI and Redoc from drf-spectacular-sidecar (pinned), served by the service itself at /static/.
INSTALLED_APPS += ["django.contrib.sessions", "django.contrib.staticfiles", "drf_spectacular_sidecar"]
MIDDLEWARE = ["app.middleware.MetricsMiddleware", *MIDDLEWARE]  # counts every request (outermost: times all)
LOGIN_URL = "/dashboard/login/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SAMESITE = "Strict"
# A Prometheus scraper without an account sends `Authorization: Bearer $MUSICBUD_METRICS_TOKEN` (unset: staff only).
MUSICBUD_METRICS_TOKEN = env_str("MUSICBUD_METRICS_TOKEN", "")
SPECTACULAR_SETTINGS.update(
    SWAGGER_UI_DIST="SIDECAR", SWAGGER_UI_FAVICON_HREF="SIDECAR", REDOC_DIST="SIDECAR",
    SWAGGER_UI_SETTINGS={"deepLinking": True, "validatorUrl": None},  # no badge fetched from swagger.io
)
# --- Discovery (issue 15): trending, new items ---------------------------------------------------------------
# Trending (ai/trending.py): an edge counts half as much MUSICBUD_TRENDING_HALF_LIFE_HOURS after it was made (168:
# one week); edges without created_at are dated when the service first saw them.
MUSICBUD_TRENDING_HALF_LIFE_HOURS = env_float("MUSICBUD_TRENDING_HALF_LIFE_HOURS", 168.0, minimum=0.01)
# New items (app/services/new_items.py): whether answers rank catalogue items the models do not have (from their
# features), and how often a worker looks for them.
MUSICBUD_NEW_ITEMS = env_bool("MUSICBUD_NEW_ITEMS", True)
MUSICBUD_NEW_ITEMS_SECONDS = env_float("MUSICBUD_NEW_ITEMS_SECONDS", 60.0, minimum=0.0)
# --- A/B testing (app/services/experiments.py, experiment_outcomes.py) ---
# A worker reads the running experiments from the database at most every MUSICBUD_EXPERIMENT_REFRESH_SECONDS
# (off: no experiment is served; the test settings turn it off, tests that need it turn it on) and writes what it
# counted (users, answers, feedback, conversions) every MUSICBUD_EXPERIMENT_FLUSH_SECONDS, in one transaction.
MUSICBUD_EXPERIMENTS = env_bool("MUSICBUD_EXPERIMENTS", True)
MUSICBUD_EXPERIMENT_REFRESH_SECONDS = env_float("MUSICBUD_EXPERIMENT_REFRESH_SECONDS", 1.0, minimum=0.0)
MUSICBUD_EXPERIMENT_FLUSH_SECONDS = env_float("MUSICBUD_EXPERIMENT_FLUSH_SECONDS", 5.0, minimum=0.1)
MUSICBUD_EXPERIMENT_WINDOW_DAYS = env_float("MUSICBUD_EXPERIMENT_WINDOW_DAYS", 7.0, minimum=0.0)

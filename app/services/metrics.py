"""Prometheus metrics (prometheus-client), counted in every uvicorn worker.

Counted as requests are served (cheap: a few µs per request, children bound once per label set):
    musicbud_http_requests_total{route, method, status}          every request, by Django's route *name*
    musicbud_http_request_duration_seconds{route, method}        latency histogram
    musicbud_answer_cache_total{result="hit"|"miss"}              the answer cache (app/services/answer_cache.py)

Read when scraped (from the manifests, the training status file, the graph):
    musicbud_model_info{type, version}, musicbud_model_age_seconds{type}, musicbud_model_size_bytes{type},
    musicbud_model_heldout{type, metric}, musicbud_training_seconds{type}, musicbud_training_progress,
    musicbud_neo4j_up, musicbud_change_feed_lag_seconds (when the scraping worker follows the feed).

Multiprocess mode: when PROMETHEUS_MULTIPROC_DIR is set (`make serve` and scripts/live_stack.py set it to a
directory emptied before uvicorn starts), every worker writes its counters into files there and a scrape, on
whichever worker, sums them all. Without it (a test's in-process client) the counters are this process's.
"""
from __future__ import annotations

import logging
import os
import time
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("musicbud_http_requests", "HTTP requests served, by route name, method and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("musicbud_http_request_duration_seconds", "Time to answer, by route name and method.",
                    ["route", "method"], buckets=LATENCY_BUCKETS)
ANSWER_CACHE = Counter("musicbud_answer_cache", "Answer cache lookups, by result (hit or miss).", ["result"])
ANSWER_CACHE_HIT = ANSWER_CACHE.labels(result="hit")
ANSWER_CACHE_MISS = ANSWER_CACHE.labels(result="miss")

_children: dict[tuple[str, str, int], tuple] = {}


def request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    """Count one request (the hot path: one dict lookup, one counter increment, one histogram observation)."""
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        if method not in METHODS:
            method = "OTHER"
        pair = _children[key] = (REQUESTS.labels(route=route, method=method, status=str(status)),
                                 LATENCY.labels(route=route, method=method))
    pair[0].inc()
    pair[1].observe(seconds)


class ServiceCollector:
    """The gauges read when scraped: served models, last training, Neo4j, the change feed."""

    def collect(self):
        from ai.model_store import ModelIntegrityError, read_manifest
        from django.conf import settings

        from app import graph
        from app.services.health import MODEL_KEYS
        from app.services.training_jobs import training_status_get

        info = GaugeMetricFamily("musicbud_model_info", "The served model's version (value 1).",
                                 labels=["type", "version"])
        age = GaugeMetricFamily("musicbud_model_age_seconds", "Seconds since the served model was trained.",
                                labels=["type"])
        size = GaugeMetricFamily("musicbud_model_size_bytes", "Bytes of the served model's files.", labels=["type"])
        heldout = GaugeMetricFamily("musicbud_model_heldout", "Held-out metrics of the served model's training.",
                                    labels=["type", "metric"])
        seconds = GaugeMetricFamily("musicbud_training_seconds", "Seconds the last training of each type took.",
                                    labels=["type"])
        now = time.time()
        for key in MODEL_KEYS:
            try:
                manifest = read_manifest(settings.MUSICBUD_MODEL_DIR, key)
            except ModelIntegrityError:
                manifest = None
            if not manifest:
                continue
            info.add_metric([key, str(manifest.get("version"))], 1)
            if manifest.get("trained_at"):
                age.add_metric([key], now - datetime.fromisoformat(manifest["trained_at"]).timestamp())
            size.add_metric([key], sum(int(f.get("bytes", 0)) for f in (manifest.get("files") or {}).values()))
            for name, value in (manifest.get("metrics") or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    heldout.add_metric([key, name], float(value))
        status = training_status_get()
        for key, part in (status.get("types") or {}).items():
            if isinstance(part.get("seconds"), (int, float)):
                seconds.add_metric([key], float(part["seconds"]))
        progress = GaugeMetricFamily("musicbud_training_progress", "The running or last training job's progress, 0-1.")
        progress.add_metric([], float(status.get("progress") or 0.0))
        running = GaugeMetricFamily("musicbud_training_running", "1 while a training job runs.")
        running.add_metric([], 1.0 if status.get("state") in ("starting", "running") else 0.0)
        neo4j = GaugeMetricFamily("musicbud_neo4j_up", "1 when Neo4j answered this scrape's probe.")
        neo4j.add_metric([], 1.0 if graph.is_reachable() else 0.0)
        yield from (info, age, size, heldout, seconds, progress, running, neo4j)
        from app.services.live import live

        lag = live.lag_seconds
        if lag is not None:
            feed = GaugeMetricFamily("musicbud_change_feed_lag_seconds",
                                     "How far the change feed of the scraping worker is behind the graph.")
            feed.add_metric([], float(lag))
            yield feed


def _registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessCounters())
    registry.register(ServiceCollector())
    return registry


class _ProcessCounters:
    """This process's own counters (no multiprocess directory)."""

    def collect(self):
        return REGISTRY.collect()


def metrics_render() -> bytes:
    """Every metric in the Prometheus text format (reads files and asks Neo4j: call it in a thread)."""
    return generate_latest(_registry())


ADMIN_ROUTES = ("dashboard", "metrics")  # the admin's own pages are left out of the serving figures


def serving_counts() -> dict:
    """The request and answer-cache counters summed over every worker, as cumulative totals: {"requests",
    "buckets": {upper bound: cumulative count}, "hits", "misses"} (API routes only, not the admin's pages)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        families = registry.collect()
    else:
        families = REGISTRY.collect()
    counts = {"requests": 0.0, "buckets": {}, "hits": 0.0, "misses": 0.0}
    for family in families:
        for sample in family.samples:
            route = sample.labels.get("route", "")
            if route.startswith(ADMIN_ROUTES):
                continue
            if sample.name == "musicbud_http_requests_total":
                counts["requests"] += sample.value
            elif sample.name == "musicbud_http_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                counts["buckets"][le] = counts["buckets"].get(le, 0.0) + sample.value
            elif sample.name == "musicbud_answer_cache_total":
                counts["hits" if sample.labels.get("result") == "hit" else "misses"] += sample.value
    return counts


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile (0-1) of a cumulative histogram {upper bound: count}, interpolated inside its bucket as
    Prometheus' histogram_quantile does; None without observations. Bounded by the largest finite bound."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower

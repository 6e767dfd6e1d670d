"""What the staff dashboard shows (app/views/dashboard_views.py renders it): per type the served model, its last
training's metrics (beside popularity's where a candidates table gives them), the candidates table when model
selection wrote one into the manifest, the held-out metrics over the last trainings as inline SVG; the training
job; live serving figures from the metrics (app/services/metrics.py); Neo4j; the A/B experiments
(app/services/experiments.py).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timezone
from html import escape

from django.conf import settings
from django.db import DatabaseError

from ai.model_store import ModelIntegrityError, read_manifest
from app import graph
from app.services.health import MODEL_KEYS
from app.services.metrics import histogram_quantile, serving_counts
from app.services.training_jobs import training_status_get
from app.services.training_status import history_read

logger = logging.getLogger(__name__)

PLOTTED = ("precision_at_k", "recall_at_k", "ndcg_at_k", "auc")  # the held-out metrics drawn over trainings
SHOWN = ("precision_at_k", "recall_at_k", "ndcg_at_k", "auc", "coverage")
LABELS = {"precision_at_k": "P@10", "recall_at_k": "R@10", "ndcg_at_k": "NDCG@10", "auc": "AUC", "coverage": "coverage"}
COLOURS = {"precision_at_k": "#1f77b4", "recall_at_k": "#2ca02c", "ndcg_at_k": "#d62728", "auc": "#9467bd"}
WINDOW_SECONDS = 30.0  # serving figures: the counters' change over about this long


def _age(trained_at: str | None) -> float | None:
    if not trained_at:
        return None
    return max(0.0, datetime.now(timezone.utc).timestamp() - datetime.fromisoformat(trained_at).timestamp())


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def size_text(size: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("kB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _candidates(manifest: dict) -> list[dict]:
    """The manifest's candidates table (model selection), as a list of flat dicts; [] when absent or odd."""
    rows = manifest.get("candidates")
    if not isinstance(rows, list):
        return []
    flat = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        cells = {k: v for k, v in row.items() if not isinstance(v, (dict, list))}
        for k, v in (row.get("metrics") or {}).items() if isinstance(row.get("metrics"), dict) else ():
            cells[LABELS.get(k, k)] = v
        flat.append(cells)
    return flat


def _popularity_metrics(manifest: dict) -> dict:
    """Popularity's held-out metrics from the same training, when the manifest has them (a candidate named so, or
    a `baseline` / `popularity_metrics` block); {} otherwise."""
    for field in ("popularity_metrics", "baseline"):
        if isinstance(manifest.get(field), dict):
            return manifest[field].get("metrics", manifest[field]) if isinstance(manifest[field], dict) else {}
    for row in manifest.get("candidates") or []:
        if isinstance(row, dict) and "popular" in str(row.get("name") or row.get("engine") or "").lower():
            return row.get("metrics") if isinstance(row.get("metrics"), dict) else row
    return {}


def history_svg(points: list[dict], *, width: int = 320, height: int = 120) -> str:
    """An inline SVG of the held-out metrics over trainings (one polyline per metric, 0-1 on the y axis)."""
    pad = 22
    if not points:
        return ""
    n = len(points)
    x = (lambda i: pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5))
    y = (lambda v: height - pad - (height - 2 * pad) * max(0.0, min(1.0, float(v))))
    parts = [f'<svg class="plot" role="img" aria-label="held-out metrics over the last {n} trainings" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{pad}" y1="{y(0)}" x2="{width - pad}" y2="{y(0)}" stroke="#999"/>',
             f'<line x1="{pad}" y1="{y(1)}" x2="{width - pad}" y2="{y(1)}" stroke="#ddd"/>',
             f'<text x="2" y="{y(0) + 4}" font-size="9">0</text><text x="2" y="{y(1) + 4}" font-size="9">1</text>']
    for i, metric in enumerate(PLOTTED):
        coords = [(x(j), y(p["metrics"][metric])) for j, p in enumerate(points)
                  if isinstance(p["metrics"].get(metric), (int, float))]
        if not coords:
            continue
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
        parts.append(f'<polyline class="series" data-metric="{metric}" fill="none" stroke="{COLOURS[metric]}" '
                     f'stroke-width="1.5" points="{path}"/>')
        parts.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2" fill="{COLOURS[metric]}"/>' for a, b in coords)
        parts.append(f'<text x="{pad + i * 70}" y="{height - 4}" font-size="10" fill="{COLOURS[metric]}">'
                     f'{escape(LABELS[metric])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def model_rows() -> list[dict]:
    """One row per content type (and the taste model): the served model and its trainings."""
    history = history_read()
    rows = []
    for key in MODEL_KEYS:
        try:
            manifest = read_manifest(settings.MUSICBUD_MODEL_DIR, key) or {}
        except ModelIntegrityError as exc:
            manifest = {"error": str(exc)}
        metrics = manifest.get("metrics") if isinstance(manifest.get("metrics"), dict) else {}
        popularity = _popularity_metrics(manifest)
        points = [{"version": e["types"][key].get("version"), "metrics": e["types"][key].get("metrics") or {}}
                  for e in history if isinstance(e.get("types"), dict) and isinstance(e["types"].get(key), dict)]
        points = [p for p in points if p["metrics"]]
        age = _age(manifest.get("trained_at"))
        size = sum(int(f.get("bytes", 0)) for f in (manifest.get("files") or {}).values() if isinstance(f, dict))
        rows.append({
            "key": key, "version": manifest.get("version"), "trained_at": manifest.get("trained_at"),
            "age": age_text(age), "size": size_text(size) if manifest.get("files") else "—",
            "engine": manifest.get("engine"), "error": manifest.get("error"),
            "metrics": [{"name": LABELS[m], "value": metrics.get(m), "popularity": popularity.get(m)} for m in SHOWN
                        if m in metrics],
            "candidates": _candidates(manifest),
            "plot": history_svg(points), "trainings": len(points),
        })
    return rows


def experiments_get() -> dict:
    """{"available": True, "experiments": [one flat row per experiment]} (app/services/experiments.py: its arms
    as "name share", engine); the dashboard never fails on it: a database that cannot be read is logged and
    shown as no experiments, "available": False."""
    from app.services.experiments import experiments_rows

    try:
        rows = experiments_rows()
    except DatabaseError:
        logger.warning("The experiments could not be read for the dashboard", exc_info=True)
        return {"available": False, "experiments": []}
    return {"available": True, "experiments": [
        {"id": e["id"], "name": e["name"], "type": e["content_type"], "state": e["state"],
         "arms": ", ".join(f"{a['name']} {a['share']:g} ({a['engine']})" for a in e["arms"]),
         "promoted": e["promoted_arm"] or "", "created": e["created_at"][:19].replace("T", " "),
         **_report_columns(e["id"])}
        for e in rows]}


def _report_columns(experiment_id: int) -> dict:
    """The report's verdict and each arm's users, conversion rate and (against the control) p-value, in words
    (app/services/experiment_outcomes.py; always-valid p-values, so reading it on every page view is sound)."""
    from app.services.experiment_outcomes import experiment_report_get

    try:
        report = experiment_report_get(experiment_id=experiment_id)
    except DatabaseError:
        logger.warning("The report of experiment %s could not be read for the dashboard", experiment_id,
                       exc_info=True)
        return {"verdict": "report unavailable", "outcomes": ""}

    def arm_text(arm: dict) -> str:
        text = f"{arm['name']}: {arm['users']} users, {arm['conversions']} converted ({arm['conversion_rate']:.1%})"
        versus = arm["versus_control"]
        return text + (f", p {versus['p_value']:.3g}" if versus else "")

    return {"verdict": report["verdict"], "outcomes": "; ".join(arm_text(a) for a in report["arms"])}


class ServingFigures:
    """Requests/s, p50/p99 and the answer-cache hit rate over the last ~WINDOW_SECONDS, from the counters' change
    between two readings (each dashboard read adds one; the first read has nothing to compare with)."""

    def __init__(self) -> None:
        self._readings: deque[tuple[float, dict]] = deque(maxlen=120)
        self._lock = threading.Lock()

    def read(self) -> dict:
        now, counts = time.monotonic(), serving_counts()
        with self._lock:
            while len(self._readings) > 1 and now - self._readings[1][0] >= WINDOW_SECONDS:
                self._readings.popleft()
            base = self._readings[0] if self._readings else None
            self._readings.append((now, counts))
        figures = {"requests_total": int(counts["requests"]), "requests_per_second": None, "p50_ms": None,
                   "p99_ms": None, "cache_hit_rate": None, "window_seconds": None}
        lookups = counts["hits"] + counts["misses"]
        if lookups:
            figures["cache_hit_rate"] = counts["hits"] / lookups
        if base is None or now - base[0] < 0.5:
            return figures
        then, old = base
        seconds = now - then
        figures["window_seconds"] = round(seconds, 1)
        figures["requests_per_second"] = (counts["requests"] - old["requests"]) / seconds
        delta = {le: c - old["buckets"].get(le, 0.0) for le, c in counts["buckets"].items()}
        for q, field in ((0.5, "p50_ms"), (0.99, "p99_ms")):
            value = histogram_quantile(q, delta)
            figures[field] = None if value is None else value * 1000
        d_lookups = lookups - (old["hits"] + old["misses"])
        if d_lookups > 0:
            figures["cache_hit_rate"] = (counts["hits"] - old["hits"]) / d_lookups
        return figures


serving_figures = ServingFigures()


def live_status() -> dict:
    """What the page polls: the training job, serving figures, Neo4j, the change feed's lag (this worker's)."""
    from app.services.live import live

    return {"training": training_status_get(), "serving": serving_figures.read(),
            "neo4j": "up" if graph.is_reachable() else "down", "change_feed_lag_seconds": live.lag_seconds}


def dashboard_get() -> dict:
    """Everything the page shows (reads manifests and files, asks Neo4j: call it from a thread or sync view)."""
    return {"models": model_rows(), **live_status(), "experiments": experiments_get()}

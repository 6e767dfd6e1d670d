"""What each arm of a running experiment gets, counted in the worker and written in batches, and the report.

Counted per arm:
- users: assigned users who got at least one answer of the experiment's type (one row per experiment and user);
- impressions: answers served to them (the serving path, app/services/recommendation_service.py);
- clicks and dismissals: the feedback endpoint's events of that type (app/services/feedback.py);
- conversions: a user whose new like / watch / top (/ saved / played / rated) edge of that type, seen by the
  change feed (app/services/live.py), is to an item their arm recommended to them, at most the experiment's
  window (`window_days`) after an answer showed it (watchlist edges, WANTS_TO_WATCH, are intent, not counted).
  The unit is the user: one conversion row per experiment and user.

No request writes to the database. Each worker adds to in-memory buffers (a dict update under a lock) and a
flusher thread writes them every MUSICBUD_EXPERIMENT_FLUSH_SECONDS: the buffers are swapped out under the lock,
then written in ONE transaction (users and conversions `INSERT ... ON CONFLICT DO NOTHING` on their unique keys,
exposures upserted, counters added with `UPDATE ... SET n = n + delta`), so a flush is stored whole or not at
all; a failed one is merged back into the buffers and tried again at the next interval. Several workers and hosts
flushing at once stay correct because every write is an idempotent insert or a relative increment. Conversions
are matched at flush time, after the worker's own exposures are written: every worker's feed sees every edge, so
the worker that served the item finds the match even if another worker's flush came first; duplicates are
refused by the unique key. A report flushes its own worker first; the others' counts are at most one flush
interval old.
"""
from __future__ import annotations

import atexit
import logging
import threading
from collections import defaultdict
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import Count, F
from django.utils import timezone

from ai import experiments as stats
from app.services.answer_cache import JsonFragment
from app.services.experiments import Arm, RunningExperiment, experiments_running_now, experiment_row

logger = logging.getLogger(__name__)

NOT_CONVERSIONS = frozenset({"WANTS_TO_WATCH"})  # a watchlist entry is intent, not a like or a watch
CLOCK_SLACK = timedelta(seconds=60)  # the graph's clock against the worker's, when matching a like to an answer
TEST_DESCRIPTION = (
    "Conversion = users who liked or watched an item their arm recommended to them within the window, over users "
    "assigned. p_value: the always-valid mSPRT p-value (Johari, Pekelis & Walsh 2022; normal mixture, tau = 0.02) "
    "against the control, valid however often the report is read (no peeking problem); kept non-increasing across "
    "reads; Bonferroni over the arms. A winner is named only when its p_value < alpha_per_comparison and its lift is "
    "positive. fixed_horizon_p_value (pooled z-test) is shown for reference only: valid for one look at a sample size "
    "fixed in advance. rate_interval_95: Wilson; lift_interval: the mSPRT's confidence sequence.")


class Outcomes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()
        self._ids_of: dict[tuple[int, str], tuple[JsonFragment, list[str]]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.flushes = 0

    def _reset(self) -> None:
        self._users: dict[tuple[int, str], tuple[str, datetime]] = {}
        self._exposures: dict[tuple[int, str, str], tuple[str, datetime, datetime]] = {}
        self._counters: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self._edges: list[tuple[str, str, str, datetime]] = []

    # --- counting (memory only) ---------------------------------------------------------------------------
    def served(self, *, experiment: RunningExperiment, arm: Arm, uid: str, answer: JsonFragment) -> None:
        """An answer of `arm` went to the user: one impression, and its items are what the arm showed them."""
        key = (experiment.id, uid)
        known = self._ids_of.get(key)
        if known is not None and known[0] is answer:  # the cached answer again: its ids are known
            ids = known[1]
        else:
            ids = [item["id"] for item in orjson.loads(answer.text)]
            self._ids_of[key] = (answer, ids)
        now = timezone.now()
        with self._lock:
            self._users.setdefault(key, (arm.name, now))
            for item in ids:
                old = self._exposures.get((experiment.id, uid, item))
                self._exposures[(experiment.id, uid, item)] = (arm.name, old[1] if old else now, now)
            self._counters[(experiment.id, arm.name)][0] += 1

    def feedback(self, *, experiment: RunningExperiment, arm: Arm, clicks: int = 0, dismissals: int = 0) -> None:
        with self._lock:
            counter = self._counters[(experiment.id, arm.name)]
            counter[1] += clicks
            counter[2] += dismissals

    def edges(self, rows: list[dict]) -> None:
        """Change-feed rows (live.apply_edges's): the positive edges of types with a running experiment are kept
        until the next flush, which matches them to what the arms showed."""
        running = experiments_running_now()
        if not running:
            return
        kept = [(row["type"], row["user"], row["item"], row["t"]) for row in rows
                if row["weight"] > 0 and row["type"] in running and row.get("rel") not in NOT_CONVERSIONS]
        if kept:
            with self._lock:
                self._edges.extend(kept)

    # --- writing ------------------------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write what was counted since the last flush, in one transaction; False (and kept for the next one)
        when the database refused it."""
        with self._lock:
            users, exposures, counters, edges = self._users, self._exposures, dict(self._counters), self._edges
            self._reset()
        self._ids_of = {}  # a parse cache: bounded by what one interval serves
        if not (users or exposures or counters or edges):
            return True
        try:
            with transaction.atomic():
                self._write(users, exposures, counters, edges)
        except DatabaseError as exc:
            logger.error("Could not write the experiments' counts (kept for the next flush): %s", exc)
            self._merge_back(users, exposures, counters, edges)
            return False
        self.flushes += 1
        return True

    def _write(self, users, exposures, counters, edges) -> None:
        from app.models import ExperimentArmCounter, ExperimentConversion, ExperimentExposure, ExperimentUser

        ExperimentUser.objects.bulk_create(
            [ExperimentUser(experiment_id=e, uid=u, arm=arm, first_seen=at) for (e, u), (arm, at) in users.items()],
            ignore_conflicts=True, batch_size=500)
        ExperimentExposure.objects.bulk_create(
            [ExperimentExposure(experiment_id=e, uid=u, item_id=i, arm=arm, first_shown=first, last_shown=last)
             for (e, u, i), (arm, first, last) in exposures.items()],
            update_conflicts=True, unique_fields=["experiment", "uid", "item_id"], update_fields=["last_shown"],
            batch_size=500)
        for (e, arm), (impressions, clicks, dismissals) in counters.items():
            if impressions or clicks or dismissals:
                updated = ExperimentArmCounter.objects.filter(experiment_id=e, arm=arm).update(
                    impressions=F("impressions") + impressions, clicks=F("clicks") + clicks,
                    dismissals=F("dismissals") + dismissals)
                if not updated:
                    ExperimentArmCounter.objects.create(experiment_id=e, arm=arm, impressions=impressions,
                                                        clicks=clicks, dismissals=dismissals)
        if edges:
            ExperimentConversion.objects.bulk_create(self._conversions(edges), ignore_conflicts=True, batch_size=500)

    def _conversions(self, edges) -> list:
        from app.models import ExperimentConversion, ExperimentExposure

        running = experiments_running_now()
        by_type: dict[str, list[tuple[str, str, datetime]]] = defaultdict(list)
        for key, uid, item, at in edges:
            if key in running:
                by_type[key].append((uid, item, at))
        out, seen = [], set()
        for key, rows in by_type.items():
            experiment = running[key]
            window = timedelta(days=experiment.window_days)
            shown = {(uid, item): (arm, first, last) for uid, item, arm, first, last in
                     ExperimentExposure.objects.filter(experiment_id=experiment.id, uid__in={r[0] for r in rows},
                                                       item_id__in={r[1] for r in rows})
                     .values_list("uid", "item_id", "arm", "first_shown", "last_shown")}
            for uid, item, at in rows:
                match = shown.get((uid, item))
                if match is None or uid in seen:
                    continue
                arm, first, last = match
                if first - CLOCK_SLACK <= at <= last + window:
                    seen.add(uid)
                    out.append(ExperimentConversion(experiment_id=experiment.id, uid=uid, arm=arm, item_id=item,
                                                    converted_at=at))
        return out

    def _merge_back(self, users, exposures, counters, edges) -> None:
        with self._lock:
            for key, value in users.items():
                self._users.setdefault(key, value)
            for key, (arm, first, last) in exposures.items():
                old = self._exposures.get(key)
                self._exposures[key] = (arm, min(first, old[1]), max(last, old[2])) if old else (arm, first, last)
            for key, values in counters.items():
                counter = self._counters[key]
                for i, v in enumerate(values):
                    counter[i] += v
            self._edges[:0] = edges

    # --- the flusher thread --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(settings.MUSICBUD_EXPERIMENT_FLUSH_SECONDS):
                self.flush()
                close_old_connections()

        self._thread = threading.Thread(target=run, name="musicbud-experiment-flush", daemon=True)
        self._thread.start()
        atexit.register(self.flush)  # what the last interval counted, when the worker ends normally

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None


outcomes = Outcomes()


# --- the report ---------------------------------------------------------------------------------------------

def _per_arm(model, experiment_id: int, field: str = "id") -> dict[str, int]:
    return {row["arm"]: row["n"] for row in
            model.objects.filter(experiment_id=experiment_id).values("arm").annotate(n=Count(field))}


def experiment_report_get(*, experiment_id: int) -> dict:
    """Every arm's counts, conversion rate with its 95 % Wilson interval and, against the control, the lift, the
    always-valid p-value and interval, and the winner when there is one (sync: call it in a thread)."""
    from app.models import ExperimentArmCounter, ExperimentConversion, ExperimentUser

    outcomes.flush()
    row = experiment_row(experiment_id)
    users, converted = _per_arm(ExperimentUser, row.id), _per_arm(ExperimentConversion, row.id)
    counters = {c.arm: c for c in ExperimentArmCounter.objects.filter(experiment_id=row.id)}
    counts = [stats.ArmCounts(name=a["name"], users=users.get(a["name"], 0),
                              converted_users=converted.get(a["name"], 0),
                              impressions=getattr(counters.get(a["name"]), "impressions", 0),
                              clicks=getattr(counters.get(a["name"]), "clicks", 0),
                              dismissals=getattr(counters.get(a["name"]), "dismissals", 0)) for a in row.arms]
    control = row.arms[0]["name"]
    previous = {k: v for k, v in (row.previous_p_values or {}).items() if k in {c.name for c in counts} - {control}}
    report = stats.experiment_report(arms=counts, control=control, previous=previous)
    if row.state == "running":  # each read is a look: the next one may not go above it
        row.previous_p_values = report.always_valid_p_values()
        row.save(update_fields=["previous_p_values"])
    engines = {a["name"]: a["engine"] for a in row.arms}
    return {
        "experiment": {"id": row.id, "name": row.name, "state": row.state, "window_days": row.window_days},
        "control": control, "alpha": report.alpha, "alpha_per_comparison": report.alpha_per_comparison,
        "winner": report.winner, "verdict": report.verdict, "test": TEST_DESCRIPTION,
        "arms": [_arm_json(arm, engines[arm.name]) for arm in report.arms],
    }


def _arm_json(arm: stats.ArmReport, engine: str) -> dict:
    c, lift = arm.counts, arm.versus_control
    return {
        "name": c.name, "engine": engine, "users": c.users, "impressions": c.impressions, "clicks": c.clicks,
        "dismissals": c.dismissals, "conversions": c.converted_users, "conversion_rate": arm.rate,
        "rate_interval_95": list(arm.rate_interval),
        "clicks_per_impression": arm.clicks_per_impression, "dismissals_per_impression": arm.dismissals_per_impression,
        "versus_control": None if lift is None else {
            "absolute_lift": lift.absolute_lift, "relative_lift": lift.relative_lift,
            "p_value": lift.always_valid_p_value, "lift_interval": list(lift.always_valid_interval),
            "fixed_horizon_p_value": lift.fixed_horizon_p_value, "significant": lift.significant},
    }


def _listen_to_the_change_feed() -> None:
    from app.services.live import live

    if outcomes.edges not in live.edge_listeners:
        live.edge_listeners.append(outcomes.edges)


_listen_to_the_change_feed()

"""What users did since the served models were trained, in this worker: each user's current history, kept
current without retraining, so that a like counts at once.

A served model knows every user's history as it was when it was trained (its snapshot). What happened since
reaches this worker two ways:

- The change feed (edges with `created_at`, as our writers and importers make them): every MUSICBUD_FEED_SECONDS
  (0.25 s) one worker of the host looks at Neo4j's count of every edge type (its count store: nothing read) and
  signals the others when they moved (or every MUSICBUD_FEED_FULL_SECONDS, 2 s, whatever they say); then each
  worker's follower thread reads the edges of every content type and the dismissals created after its
  watermark (each edge type seeks its own created_at index; app/services/graph_schema.py), and folds them
  into the users' histories. It starts from the oldest snapshot of the served models (minus
  MUSICBUD_FEED_OVERLAP_SECONDS, 2 s, for edges committed after their created_at: every full read re-reads that
  overlap), so a worker that starts or reloads a model replays what the model lacks.
  A user the feed says nothing of has nothing new: answering them reads nothing.
- Re-reading a user's whole history of a type (one query), which also sees what the feed cannot: edges without
  `created_at` (MusicBud's own graph has no edge property at all) and removed edges (an unlike). For a type whose
  model was trained on untimed edges (or that has no model yet), a user's history is re-read when they ask and
  their last read is MUSICBUD_HISTORY_REREAD_SECONDS (1 s) old or more: the request waits for that read (~1 ms
  on loopback). For a type the feed follows, a user who asks is checked in the background (batched, the request
  does not wait) when their last read of it is MUSICBUD_HISTORY_RECHECK_SECONDS (60 s) old: one query counts,
  for a batch of such users, the items each has of the types they asked for, and only a user whose count
  differs from what is known is read again whole. Those checks run in batches, every
  MUSICBUD_HISTORY_RECHECK_BATCH_SECONDS (1 s). That bounds how long a removed edge keeps counting: an unlike
  is seen by the answers given from ~61 s after it (plus one answer).

When Neo4j is unreachable, answers go on from memory; the feed resumes from its watermark when it returns (no
like written meanwhile is lost) and re-reads are tried again.

Each user's state is immutable once published (a change publishes a new one with version + 1), so readers need
no lock; the answer cache keys a user's answers on that version. At most MUSICBUD_LIVE_USERS users are kept
(least recently asked out first); one evicted comes back from a re-read the next time they ask.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings

from ai.trained_model import TrainedModel
from app.content_types import CONTENT_TYPES, USER_LABEL, ContentType
from app.graph import GRAPH_ERRORS
from app.services import recommendation_data_service as data
from app.services.model_registry import registry
from app.services.user_directory import unknown_users_forget

logger = logging.getLogger(__name__)

__all__ = ["LiveHistories", "UserLive", "live"]


@dataclass(frozen=True)
class UserLive:
    """A user's state in this worker: per model key, their whole current history where it may differ from the
    served model's row ({item id: weight}), what they dismissed, when each type was last read whole."""

    histories: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    dismissed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    read_at: Mapping[str, float] = field(default_factory=dict)  # model key -> time.monotonic() of the last read
    version: int = 0


EMPTY = UserLive()


def _model_history(model: TrainedModel | None, uid: str) -> dict[str, float]:
    """The user's row of a served model as {item id: weight} ({} when the model does not have them)."""
    if model is None:
        return {}
    row = model.user_map.get(uid)
    if row is None:
        return {}
    cols, weights = model.row_items(row)
    ids = model.item_ids
    return {ids[c]: float(w) for c, w in zip(cols.tolist(), weights.tolist())}


class LiveHistories:
    def __init__(self) -> None:
        self.edge_listeners: list = []  # callables given every batch of change-feed rows
        self._users: OrderedDict[str, UserLive] = OrderedDict()
        self._lock = threading.Lock()
        self._watermark: datetime | None = None
        self._recent: dict[str, datetime] = {}  # ids of the edges applied within the overlap window
        self._versions: dict[str, str | None] = {}  # model key -> the version the histories are based on
        self._snapshots: dict[str, datetime] = {}
        self._pending: set[tuple[str, str]] = set()  # (user, model key) to re-check in the background
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._down_logged = False
        self.polls = 0
        self._counts: dict[str, int] | None = None  # the edge counts at the last read of the edges
        self._full_at = float("-inf")
        self._signal: bytes | None = None  # the last signal this worker read the edges for
        self._app_users: int | None = None  # the graph's count of app users in that signal
        self._newest: datetime | None = None  # the newest created_at the feed has read
        self._replay = False  # a model was replaced: read from its snapshot at the next turn
        self._leader_fd: int | None = None  # holds the host's feed leader lock when this worker has it
        self._recheck_at = float("-inf")  # when the last batch of rechecks ran
        self.rechecked = 0  # users whose history size was checked (x types)
        self.reread = 0  # of which read again whole (their size differed)
        self.lag_seconds: float | None = None  # how far behind the graph's clock the feed was at its last poll

    # --- reading (the serving path; no I/O) --------------------------------------------------------------
    def user(self, uid: str) -> UserLive:
        state = self._users.get(uid)
        return EMPTY if state is None else state

    def needs_read(self, uid: str, model_key: str, *, untimed: bool) -> bool:
        """Whether answering this user must wait for their history of the type to be read again: only for a type
        the feed cannot follow, at most every MUSICBUD_HISTORY_REREAD_SECONDS."""
        if not untimed:
            return False
        read_at = self.user(uid).read_at.get(model_key)
        return read_at is None or time.monotonic() - read_at >= settings.MUSICBUD_HISTORY_REREAD_SECONDS

    def asked(self, uid: str, model_key: str) -> None:
        """A user asked for a type the feed follows: re-read them in the background when their last read is old."""
        state = self._users.get(uid)
        if state is None and not any(uid in model.user_map for model in registry.current_models()):
            return  # nobody the models know and nothing the feed brought: nothing that could have been removed
        read_at = None if state is None else state.read_at.get(model_key)
        if read_at is None or time.monotonic() - read_at >= settings.MUSICBUD_HISTORY_RECHECK_SECONDS:
            self._pending.add((uid, model_key))
        if state is not None:
            with self._lock:
                if uid in self._users:
                    self._users.move_to_end(uid)

    # --- writing -------------------------------------------------------------------------------------------
    def _publish(self, uid: str, state: UserLive) -> None:
        with self._lock:
            self._users[uid] = state
            self._users.move_to_end(uid)
            while len(self._users) > settings.MUSICBUD_LIVE_USERS:
                self._users.popitem(last=False)

    def _apply(self, uid: str, model_key: str, *, history: dict[str, float] | None = None,
               dismissed: frozenset[str] | None = None, read: bool = False) -> bool:
        """Set a user's history and/or dismissals of a type; a new version only when something changed."""
        with self._lock:
            old = self._users.get(uid, EMPTY)
        current = old.histories.get(model_key)
        if current is None:
            current = _model_history(registry.current(model_key), uid)
        changed = False
        histories, dismissals, read_at = dict(old.histories), dict(old.dismissed), dict(old.read_at)
        if history is not None and history != current:  # equal to what is known: only the time of a read is kept
            histories[model_key] = history
            changed = True
        if dismissed is not None and dismissed != old.dismissed.get(model_key, frozenset()):
            dismissals[model_key] = dismissed
            changed = True
        if read:
            read_at[model_key] = time.monotonic()
        if not changed and not read:
            return False
        self._publish(uid, UserLive(histories=histories, dismissed=dismissals, read_at=read_at,
                                    version=old.version + (1 if changed else 0)))
        return changed

    def dismiss(self, uid: str, model_key: str, item: str) -> None:
        """A dismissal this worker just stored: it counts here at once (the other workers read it in the feed)."""
        self._apply(uid, model_key, dismissed=self.user(uid).dismissed.get(model_key, frozenset()) | {item})

    def read_users(self, uids: list[str], content_types: list[ContentType]) -> None:
        """Read those users' whole histories of those types again (one query per type); raises the driver's
        errors (the caller decides what an outage means)."""
        for ct in content_types:
            found = data.histories_of_users(content_type=ct, uids=uids)
            for uid in uids:
                history, dismissed = found.get(uid, ({}, []))
                self._apply(uid, ct.model_key, history=history, dismissed=frozenset(dismissed), read=True)

    def apply_edges(self, rows: list[dict]) -> int:
        """Fold change-feed rows (edges_since's) into the users' histories; returns how many changed one. Each of
        `edge_listeners` is then given the rows (the experiments' conversions: app/services/experiment_outcomes.py)."""
        for listener in self.edge_listeners:
            listener(rows)
        changed = 0
        trending: dict[str, list[tuple[str, float, datetime]]] = {}  # model key -> (item, added weight, time)
        for row in rows:
            if row["id"] in self._recent:
                continue
            self._recent[row["id"]] = row["t"]
            uid, key, item = row["user"], row["type"], row["item"]
            state = self.user(uid)
            if row["weight"] < 0:  # a dismissal
                changed += self._apply(uid, key, dismissed=state.dismissed.get(key, frozenset()) | {item})
                continue
            known = state.histories.get(key)
            history = dict(_model_history(registry.current(key), uid) if known is None else known)
            if history.get(item, 0.0) >= row["weight"]:
                continue
            trending.setdefault(key, []).append((item, float(row["weight"]) - history.get(item, 0.0), row["t"]))
            history[item] = float(row["weight"])
            changed += self._apply(uid, key, history=history)
        for key, edges in trending.items():
            _trending_add(registry.current(key), edges)
        return changed

    # --- the follower ---------------------------------------------------------------------------------------
    def _rebase(self) -> None:
        """When a served model was replaced, its users' histories restart from the new model's rows: the feed
        rewinds to that model's snapshot and replays what the model lacks."""
        overlap = timedelta(seconds=settings.MUSICBUD_FEED_OVERLAP_SECONDS)
        for ct in CONTENT_TYPES:
            model = registry.current(ct.model_key)
            version = model.version if model is not None else None
            if self._versions.get(ct.model_key, "\0") == version:
                continue
            self._versions[ct.model_key] = version
            snapshot = _snapshot(model)
            if snapshot is not None:
                self._snapshots[ct.model_key] = snapshot
            with self._lock:
                for uid, state in list(self._users.items()):
                    if ct.model_key in state.histories or ct.model_key in state.read_at:
                        self._users[uid] = replace(
                            state, histories={k: v for k, v in state.histories.items() if k != ct.model_key},
                            read_at={k: v for k, v in state.read_at.items() if k != ct.model_key})
            if snapshot is not None and (self._watermark is None or snapshot - overlap < self._watermark):
                self._watermark = snapshot - overlap
                self._newest, self._replay = None, True  # read again from there (every edge is applied again)
                self._recent.clear()

    def poll(self) -> int:
        """One turn of the change feed; returns how many users' histories it changed. Neo4j's count of each edge
        type (its count store: no edge read) says first whether anything was written since the last turn; the
        edges themselves are read only then, and at least every MUSICBUD_FEED_FULL_SECONDS (an edge added and
        another removed in one interval leave the counts as they were)."""
        self._rebase()
        if self._watermark is None:
            self._watermark = data.graph_now() - timedelta(seconds=settings.MUSICBUD_FEED_OVERLAP_SECONDS)
        full = self._changed()
        if self._replay:
            full, self._replay = True, False
        if full is None:
            self.polls += 1
            return 0
        limit = settings.MUSICBUD_FEED_BATCH
        overlap = timedelta(seconds=settings.MUSICBUD_FEED_OVERLAP_SECONDS)
        # from the newest edge seen; a full read also re-reads the overlap, for edges committed late
        since = self._watermark if full or self._newest is None else max(self._watermark, self._newest)
        rows = data.edges_since(content_types=list(CONTENT_TYPES), since=since, limit=limit)
        changed = self.apply_edges(rows)
        if rows:
            newest = rows[-1]["t"]
            watermark = newest - overlap
            per_branch: dict[tuple[str, str], list[datetime]] = {}
            for row in rows:
                per_branch.setdefault((row["type"], row["rel"]), []).append(row["t"])
            for times in per_branch.values():
                if len(times) >= limit:  # that edge type had more: the next poll starts where its batch ended
                    watermark = min(watermark, times[-1])
                    newest = min(newest, times[-1])
            self._watermark = max(self._watermark, watermark)
            self._newest = newest if self._newest is None else max(self._newest, newest)
            self.lag_seconds = max(0.0, (data.graph_now() - rows[-1]["t"]).total_seconds())
        else:
            self.lag_seconds = 0.0
        for edge_id in [i for i, t in self._recent.items() if t < self._watermark]:
            del self._recent[edge_id]
        self.polls += 1
        return changed

    def _changed(self) -> bool | None:
        """Whether the edges are worth reading now. One worker of the host (the one holding the feed's leader
        lock in MUSICBUD_VAR_DIR; another takes it over when it ends) asks Neo4j for the edge counts, and when
        they moved, or every MUSICBUD_FEED_FULL_SECONDS, says so in a small signal file; every worker reads
        the edges when the signal changed. So the host asks Neo4j one cheap question per interval, whatever its
        number of workers. None: nothing to read; True: read the edges again from the overlap (a full read);
        False: read the edges newer than the newest one seen."""
        if self._leader():
            counts = data.edge_counts(content_types=list(CONTENT_TYPES))
            full = time.monotonic() - self._full_at >= settings.MUSICBUD_FEED_FULL_SECONDS
            if counts != self._counts or full:
                self._counts = counts
                if full:
                    self._full_at = time.monotonic()
                _signal_path().parent.mkdir(parents=True, exist_ok=True)
                tmp = _signal_path().with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps({"counts": counts, "full": self._full_at}))
                os.replace(tmp, _signal_path())
        try:
            signal = _signal_path().read_bytes()
        except FileNotFoundError:
            return True  # nobody signals (yet): read
        if signal == self._signal:
            return None
        said = json.loads(signal)
        full = self._signal is None or said["full"] != json.loads(self._signal)["full"]
        users = said["counts"].get(USER_LABEL)
        if users != self._app_users:  # someone joined (or left): usernames the graph did not have may exist now
            if self._app_users is not None:
                unknown_users_forget()
            self._app_users = users
        self._signal = signal
        return full

    def _leader(self) -> bool:
        if self._leader_fd is None:
            path = Path(settings.VAR_DIR) / "feed.leader.lock"
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._leader_fd = fd
            logger.info("This worker (pid %d) reads the change feed's edge counts for the host", os.getpid())
        return True

    def recheck(self, batch: int = 1000) -> int:
        """Check users who asked and whose last read is old, in the types they asked for: how many items the graph
        says each has against what is known (one cheap query for the batch); only those that differ are read
        whole. Returns how many (user, type) pairs were checked."""
        pairs = []
        while self._pending and len(pairs) < batch:
            pairs.append(self._pending.pop())
        if not pairs:
            return 0
        asked: dict[str, set[str]] = {}  # model key -> the users who asked for it
        for uid, key in pairs:
            asked.setdefault(key, set()).add(uid)
        try:
            served = [ct for ct in CONTENT_TYPES
                      if ct.model_key in asked and registry.current(ct.model_key) is not None]
            uids = sorted({uid for uid, _ in pairs})
            sizes = data.history_sizes(content_types=served, uids=uids) if served else {}
            checked_types: dict[str, list[str]] = {}  # user -> the types checked unchanged for them
            for ct in served:
                model = registry.current(ct.model_key)
                changed = []
                for uid in sorted(asked[ct.model_key]):
                    state = self.user(uid)
                    known = state.histories.get(ct.model_key)
                    count = len(known) if known is not None else model.row_size(uid)
                    if known is not None and state.dismissed.get(ct.model_key):
                        count -= len(state.dismissed[ct.model_key] & known.keys())
                    if sizes.get(uid, {}).get(ct.model_key, 0) != count:
                        changed.append(uid)
                    elif known is not None or uid in self._users:
                        self._apply(uid, ct.model_key, read=True)  # as known: only when it was checked
                    else:
                        checked_types.setdefault(uid, []).append(ct.model_key)
                if changed:
                    self.read_users(changed, [ct])
                self.reread += len(changed)
            # a user checked (and unchanged) is not checked again in those types for a while; the users checked in
            # the same types share one state (a state is never changed in place: _apply copies), so each costs this
            # worker an entry of its table, not a state of three dicts (~0.5 kB: 17k users asked once were ~9 MB)
            now, shared = time.monotonic(), {}
            for uid, keys in checked_types.items():
                if uid not in self._users:
                    state = shared.get(tuple(keys))
                    if state is None:
                        state = shared[tuple(keys)] = UserLive(read_at={key: now for key in keys})
                    self._publish(uid, state)
            self.rechecked += len(pairs)
        except GRAPH_ERRORS:
            self._pending.update(pairs)  # again when the graph is back
            raise
        return len(pairs)

    def step(self) -> None:
        """One turn of the follower: the feed, then the background re-reads, batched: every
        MUSICBUD_HISTORY_RECHECK_BATCH_SECONDS or once 1,000 users wait (one query per batch: its fixed cost, not
        the users, is most of a small batch's). The graph's errors are logged once per outage; serving goes on
        from memory meanwhile."""
        try:
            self.poll()
            if (len(self._pending) >= 1000
                    or time.monotonic() - self._recheck_at >= settings.MUSICBUD_HISTORY_RECHECK_BATCH_SECONDS):
                self._recheck_at = time.monotonic()
                self.recheck()
            if self._down_logged:
                logger.info("Neo4j is reachable again: the change feed caught up from its watermark")
                self._down_logged = False
        except GRAPH_ERRORS as exc:
            if not self._down_logged:
                logger.warning("The change feed cannot read Neo4j (%s); serving from memory until it can", exc)
                self._down_logged = True

    def start(self) -> None:
        """Follow the graph in a daemon thread of this process (each server worker has one)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                self.step()
                self._stop.wait(max(0.0, settings.MUSICBUD_FEED_SECONDS - (time.monotonic() - started)))

        self._thread = threading.Thread(target=run, name="musicbud-change-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    def reset(self) -> None:
        """Forget everything (tests start from an empty worker)."""
        self.stop()
        if self._leader_fd is not None:
            os.close(self._leader_fd)
        listeners = self.edge_listeners  # who listens is the process's wiring, not the worker's state
        self.__init__()
        self.edge_listeners = listeners


def _signal_path() -> Path:
    return Path(settings.VAR_DIR) / "feed.signal"


def _snapshot(model: TrainedModel | None) -> datetime | None:
    raw = ((model.manifest if model is not None else {}).get("snapshot") or {}).get("read_at")
    return datetime.fromisoformat(raw) if raw else None


def _trending_add(model: TrainedModel | None, edges: list[tuple[str, float, datetime]]) -> None:
    """Count the feed's new edges in the served model's trending scores (ai/trending.py), between trainings;
    edges the model's snapshot already counted (the feed's overlap) are left out. An item the model does not
    have is not counted (new items are ranked from their features: app/services/new_items.py)."""
    if model is None or model.trending is None:
        return
    snapshot = _snapshot(model)
    fresh = [(model.item_map[item], weight, t.timestamp()) for item, weight, t in edges
             if item in model.item_map and (snapshot is None or t > snapshot)]
    if fresh:
        cols, weights, times = zip(*fresh)
        model.trending.add(list(cols), list(weights), list(times), now=time.time())


def _untimed(model: TrainedModel | None) -> bool:
    """A type the feed cannot follow: no model yet, or one trained on edges without created_at."""
    return model is None or bool(((model.manifest or {}).get("snapshot") or {}).get("untimed_edges", 1))


live = LiveHistories()


async def user_live_aget(*, uid: str | None, model: TrainedModel | None, ct: ContentType) -> UserLive:
    """The user's current state, read again first (in a thread) when the type is one the feed cannot follow and
    their last read is old; on a graph error, what is known."""
    if uid is None:
        return EMPTY
    if live.needs_read(uid, ct.model_key, untimed=_untimed(model)):
        try:
            await asyncio.to_thread(live.read_users, [uid], [ct])
        except GRAPH_ERRORS as exc:
            logger.warning("Could not read %s history of %s from Neo4j (%s); answering from memory", ct.key, uid, exc)
    else:
        live.asked(uid, ct.model_key)
    return live.user(uid)


def types_followed() -> dict[str, bool]:
    """{model key: whether the change feed follows it} (the others are re-read when a user asks)."""
    return {ct.model_key: not _untimed(registry.current(ct.model_key)) for ct in CONTENT_TYPES}


"""Model selection: which recommender to serve for one content type, chosen at every training on its own data.

    selection = select_model(train=train, candidates={"lightfm": lambda: make_recommender("lightfm"), ...})
    model = selection.build().fit(train)            # the winner, refitted on all of train
    held_out_report(selection, train=train, test=test)   # every candidate's held-out metrics, for the table

Protocol. `train` is everything the caller may learn from (the service passes its training part: the held-out
evaluation slice never reaches this module). A validation split is carved out of it: ``fraction`` of the items
of at most ``max_users`` users (per-user random, ``seed``); the other users stay whole in the fit part. Every
candidate is fitted on the fit part and scored on the validation split (NDCG@10, then P@10 breaks ties; the
whole catalogue is ranked, the user's fit-part items excluded). With ``blend``, the three best scored candidates
(popularity aside) are blended (ai/blend.py) with weights chosen on a grid on the same validation split (a
weight may be 0: a blend of two); the blend is a candidate like the others. With ``max_memory_mb``, a candidate
whose serving arrays are bigger (a blend: the sum of its components) is scored and shown but not chosen while
another fits the budget; when none does (a graph too big for it), the smallest is served, with a WARNING, rather
than popularity. Popularity is always scored as the baseline row of
the table; it is served only when no candidate can be fitted (the fallback chain tops every answer up with it
anyway), and a type where it beats every candidate is logged as a WARNING. A candidate that cannot fit this data (EASE over too many items, a missing
package, a diverged fit) is recorded as skipped with its reason.

Capping the validation users bounds the evaluation work (1,000 users x 20,000 items ranked per candidate).
With ``max_fit_interactions`` (a large type), the candidates are fitted on the rows of a random sample of users
holding about that many interactions, the validation users (and the caller's held-out users) always among them:
the choice is made on a model of the same kind and parameters fitted on less data, and the winner alone is then
fitted on everything, which keeps a training's cost about one full fit per type plus a bounded selection.

Nothing here knows Django or Neo4j.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai import evaluation
from ai.blend import BlendRecommender, combined, normalised
from ai.ease import CatalogueTooLargeError
from ai.recommender_base import FittedMatrix, RecommenderBase

logger = logging.getLogger(__name__)

__all__ = ["BASELINE", "BLEND", "CandidateResult", "Selection", "held_out_report", "model_memory_bytes",
           "candidates_for_size", "select_model", "users_holdout_split", "users_sample"]

BASELINE = "popularity"
BLEND = "blend"
# The service's defaults (musicbud/settings.py reads MUSICBUD_SELECT_VALIDATION, MUSICBUD_SELECT_USERS,
# MUSICBUD_MODEL_MAX_MB and MUSICBUD_EASE_MAX_ITEMS with these defaults; bench/quality.py uses them as they are)
SELECT_FRACTION = 0.2
SELECT_USERS = 1000
MODEL_MAX_MB = 20.0
EASE_MAX_ITEMS = 8000
SELECT_FIT_INTERACTIONS = 80_000  # candidates of a bigger type are fitted on a sample of users holding about this many
HYBRID_MAX_INTERACTIONS = 100_000  # LightFM hybrid is a candidate of types with at most this many interactions
BLEND_SIZE = 3  # the blend is of at most this many of the best candidates
METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "auc", "coverage", "users_evaluated")
SKIPPABLE = (CatalogueTooLargeError, ImportError, FloatingPointError, MemoryError, ValueError)


def users_holdout_split(matrix: sp.csr_matrix, *, fraction: float, max_users: int, seed: int = 42
                        ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(kept, held): a per-user random hold-out of `fraction` of the items of at most `max_users` users (users
    with fewer than 2 items are never chosen); kept + held == matrix, no entry in both."""
    if fraction <= 0 or max_users <= 0 or matrix.nnz == 0:
        return matrix, sp.csr_matrix(matrix.shape, dtype=matrix.dtype)
    kept_all, held_all = evaluation.train_test_split_per_user(matrix, test_fraction=fraction, seed=seed)
    candidates = np.flatnonzero(np.diff(held_all.indptr) > 0)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(candidates, size=min(max_users, len(candidates)), replace=False) if len(candidates) else []
    keep = np.zeros(matrix.shape[0], dtype=np.float32)
    keep[chosen] = 1.0
    held = (sp.diags(keep) @ held_all).tocsr()
    held.eliminate_zeros()
    kept = (sp.csr_matrix(matrix) - held).tocsr()
    kept.eliminate_zeros()
    return kept, held


def model_memory_bytes(model: RecommenderBase) -> int:
    """Bytes of the arrays a fitted model serves from (factors, weights, per-item vectors), the matrix it was
    fitted on left out (serving shares one copy of it: ai/trained_model.py)."""
    seen_ids: set[int] = set()

    def size(value: Any) -> int:
        if id(value) in seen_ids:
            return 0
        seen_ids.add(id(value))
        if isinstance(value, np.ndarray):
            return int(value.nbytes)
        if sp.issparse(value):
            return int(value.data.nbytes + value.indices.nbytes + value.indptr.nbytes)
        if isinstance(value, RecommenderBase):
            return size(value._state)
        if isinstance(value, FittedMatrix):
            return sum(size(v) for k, v in vars(value).items() if k != "matrix")
        if dataclasses.is_dataclass(value):
            return sum(size(getattr(value, f.name)) for f in dataclasses.fields(value))
        if isinstance(value, (list, tuple)):
            return sum(size(v) for v in value)
        return 0

    return size(model)


@dataclass
class CandidateResult:
    """One row of the selection table."""

    name: str
    engine: str
    params: dict[str, Any]
    status: str = "pending"  # scored | skipped | failed
    reason: str | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    held_out: dict[str, Any] = field(default_factory=dict)  # as fitted on the fit part, on the caller's test part
    fit_seconds: float | None = None
    memory_mb: float | None = None
    eligible: bool = True  # False: over the memory budget (scored and shown, never served)

    @property
    def key(self) -> tuple[float, float]:
        return (self.validation.get("ndcg_at_k", -1.0), self.validation.get("precision_at_k", -1.0))

    def as_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "status": self.status, "reason": self.reason,
                "validation": self.validation, "held_out": self.held_out, "fit_seconds": self.fit_seconds,
                "memory_mb": self.memory_mb, "eligible": self.eligible, "parameters": self.params}


@dataclass
class Selection:
    """The outcome: the chosen candidate's name, every candidate's row, how to build the winner again."""

    chosen: str
    results: dict[str, CandidateResult]
    protocol: dict[str, Any]
    seconds: float
    factories: dict[str, Callable[[], RecommenderBase]] = field(repr=False)
    fitted: dict[str, RecommenderBase] = field(repr=False)  # fitted on the fit part; held_out_report drops them
    blend_of: tuple[str, ...] | None = None
    blend_weights: tuple[float, ...] | None = None
    sampled: bool = False  # the candidates were fitted on a sample of users: the winner must be fitted again

    def build(self, name: str | None = None) -> RecommenderBase:
        """A new, unfitted recommender of the chosen candidate (or of `name`)."""
        name = name or self.chosen
        if name == BLEND:
            return BlendRecommender(components=[self.factories[n]() for n in self.blend_of],
                                    weights=list(self.blend_weights))
        return self.factories[name]()

    def table(self) -> dict[str, Any]:
        """What the manifest, the training status and the CLI show."""
        return {"chosen": self.chosen, "criterion": "validation NDCG@10, then P@10", "protocol": self.protocol,
                "seconds": round(self.seconds, 3),
                "candidates": {name: r.as_dict() for name, r in self.results.items()}}


def _scored(model: RecommenderBase, fit_part: sp.csr_matrix, validation: sp.csr_matrix, k: int) -> dict[str, Any]:
    """Validation metrics (no AUC: the choice does not use it, and it is the costly part)."""
    result = evaluation.evaluate_scores(model.score_items, fit_part, validation, k, with_auc=False)
    return {key: result[key] for key in METRICS if result[key] is not None}


def users_sample(matrix: sp.csr_matrix, *, max_interactions: int, keep: np.ndarray | None = None, seed: int = 44
                 ) -> sp.csr_matrix:
    """The rows of a random sample of users holding about `max_interactions` interactions (the others emptied,
    the shape kept so that ids still line up); the rows of `keep` are always in it. The matrix itself when it
    holds no more than that."""
    if matrix.nnz <= max_interactions:
        return matrix
    sizes = np.diff(matrix.indptr)
    chosen = np.zeros(matrix.shape[0], dtype=bool)
    if keep is not None and len(keep):
        chosen[np.asarray(keep, dtype=np.int64)] = True
    budget = max_interactions - int(sizes[chosen].sum())
    others = np.flatnonzero(~chosen & (sizes > 0))
    order = np.random.default_rng(seed).permutation(others)
    taken = order[:int(np.searchsorted(np.cumsum(sizes[order]), max(budget, 0), side="right"))]
    chosen[taken] = True
    sample = (sp.diags(chosen.astype(np.float32)) @ matrix).tocsr()
    sample.eliminate_zeros()
    return sample


def select_model(*, train: sp.csr_matrix, candidates: dict[str, Callable[[], RecommenderBase]],
                 fraction: float = 0.2, max_users: int = 1000, seed: int = 43, k: int = 10, blend: bool = True,
                 max_memory_mb: float | None = None, show_progress: bool = False,
                 max_fit_interactions: int | None = None, keep_users: np.ndarray | None = None) -> Selection:
    """Fit every candidate (name -> factory of an unfitted recommender) on a validation split of `train` and
    choose the best (see the module docstring). Popularity is added as the baseline when it is not a candidate.
    max_memory_mb: a candidate (or blend) whose serving arrays are bigger is scored and shown, never chosen.
    max_fit_interactions: above it, the candidates are fitted on a sample of users holding about that many
    interactions (the validation users and `keep_users`, e.g. the caller's held-out users, always among them):
    the fitted candidates then only know those users, so the caller fits the winner again on everything
    (`Selection.sampled`)."""
    started = time.perf_counter()
    factories = dict(candidates)
    if BASELINE not in factories:
        from ai.popularity import PopularityRecommender

        factories[BASELINE] = lambda: PopularityRecommender(use_weights=True)
    fit_part, validation = users_holdout_split(train, fraction=fraction, max_users=max_users, seed=seed)
    sampled = max_fit_interactions is not None and fit_part.nnz > max_fit_interactions
    if sampled:
        keep = np.flatnonzero(np.diff(validation.indptr) > 0)
        if keep_users is not None:
            keep = np.union1d(keep, np.asarray(keep_users, dtype=np.int64))
        fit_part = users_sample(fit_part, max_interactions=max_fit_interactions, keep=keep, seed=seed + 1)
    protocol = {"validation": f"{fraction:g} of the items of at most {max_users} users of the training part "
                              f"(seed {seed}); the held-out evaluation part is never seen",
                "validation_users": int((np.diff(validation.indptr) > 0).sum()),
                "validation_interactions": int(validation.nnz), "fit_interactions": int(fit_part.nnz), "k": k,
                "fit_users": int((np.diff(fit_part.indptr) > 0).sum()),
                "fit_sample": (f"the candidates were fitted on a sample of users holding about "
                               f"{max_fit_interactions:,} interactions (the validation and held-out users among "
                               f"them); the winner is fitted again on every interaction") if sampled else None}
    results: dict[str, CandidateResult] = {}
    fitted: dict[str, RecommenderBase] = {}
    if validation.nnz == 0:  # too little data to validate: the first candidate that fits is served
        protocol["validation"] = "none (no user has 2 items): the first candidate that fits is served"
    for name, factory in factories.items():
        model = factory()
        row = results[name] = CandidateResult(name=name, engine=model.name, params=model.get_params())
        t0 = time.perf_counter()
        try:
            model.fit(fit_part, show_progress=show_progress)
        except SKIPPABLE as exc:
            row.status, row.reason = "skipped", f"{type(exc).__name__}: {exc}"
            logger.info("candidate %s skipped: %s", name, row.reason)
            continue
        row.fit_seconds = round(time.perf_counter() - t0, 3)
        row.memory_mb = round(model_memory_bytes(model) / 2**20, 2)
        row.validation = _scored(model, fit_part, validation, k) if validation.nnz else {}
        row.status = "scored"
        if max_memory_mb is not None and row.memory_mb > max_memory_mb:
            row.eligible, row.reason = False, f"over the memory budget: {row.memory_mb} MB > {max_memory_mb:g} MB"
        fitted[name] = model
        logger.info("candidate %s: validation NDCG@%d %.4f P@%d %.4f, fit %.1fs, %.1f MB", name, k,
                    row.validation.get("ndcg_at_k", float("nan")), k, row.validation.get("precision_at_k", float("nan")),
                    row.fit_seconds, row.memory_mb)
    selection = Selection(chosen=BASELINE, results=results, protocol=protocol, seconds=0.0, factories=factories,
                          fitted=fitted, sampled=sampled)
    over = [r for r in results.values() if r.status == "scored" and r.name != BASELINE]
    if over and not any(r.eligible for r in over):  # a graph too big for the budget: the smallest, not popularity
        smallest = min(over, key=lambda r: (r.memory_mb, -r.key[0], -r.key[1]))
        smallest.eligible = True
        smallest.reason += "; served all the same: every candidate is over the budget and this is the smallest"
        logger.warning("every candidate is over the memory budget (%g MB): serving the smallest, %s (%.1f MB)",
                       max_memory_mb, smallest.name, smallest.memory_mb)
    if blend and validation.nnz:
        _blend_candidate(selection, fit_part, validation, k, max_memory_mb)
    scored = [r for r in results.values() if r.status == "scored" and r.eligible]
    contenders = [r for r in scored if r.name != BASELINE] or scored
    if validation.nnz:
        best = max(contenders, key=lambda r: r.key)  # max keeps the first of equals: the candidates' order
        selection.chosen = best.name
        baseline = results.get(BASELINE)
        if baseline is not None and baseline.status == "scored" and best.name != BASELINE and baseline.key > best.key:
            logger.warning("popularity beats every candidate on validation (NDCG@%d %.4f > %.4f of %s): serving %s",
                           k, baseline.key[0], best.key[0], best.name, best.name)
    else:
        selection.chosen = contenders[0].name
    selection.seconds = time.perf_counter() - started
    logger.info("selected %s (of %s) in %.1fs", selection.chosen, ", ".join(r.name for r in scored),
                selection.seconds)
    return selection


def _weight_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of n non-negative multiples of `step` summing to 1, at least two non-zero."""
    units = round(1 / step)
    grid = [tuple(c / units for c in combo) for combo in itertools.product(range(units + 1), repeat=n)
            if sum(combo) == units and sum(c > 0 for c in combo) >= 2]
    return grid


def _blend_candidate(selection: Selection, fit_part: sp.csr_matrix, validation: sp.csr_matrix, k: int,
                     max_memory_mb: float | None) -> None:
    """The blend of the (up to) three best scored candidates (popularity aside), its weights chosen on the
    validation split: a grid of step 0.2 over the simplex, then steps of 0.1 around its best. Each component's
    normalised scores of the validation users are computed once (ai/blend.py's `normalised` and `combined`,
    what serving computes). Recorded as the BLEND row (skipped when there are not two)."""
    ranked = sorted((r for r in selection.results.values() if r.status == "scored" and r.name != BASELINE
                     and r.eligible), key=lambda r: r.key, reverse=True)[:BLEND_SIZE]
    row = selection.results[BLEND] = CandidateResult(name=BLEND, engine=BLEND, params={})
    if len(ranked) < 2:
        row.status, row.reason = "skipped", "fewer than two scored candidates to blend"
        return
    names = [r.name for r in ranked]
    smallest_pair = sum(sorted(r.memory_mb or 0.0 for r in ranked)[:2])
    if max_memory_mb is not None and smallest_pair > max_memory_mb:  # no blend could be served: score none
        row.status, row.reason = "skipped", (f"every blend of {', '.join(names)} is over the memory budget "
                                             f"({smallest_pair:.1f} MB > {max_memory_mb:g} MB)")
        return
    users = np.flatnonzero(np.diff(validation.indptr) > 0)
    position = np.full(fit_part.shape[0], -1, dtype=np.int64)
    position[users] = np.arange(users.size)
    parts = [normalised(selection.fitted[name].score_items(users)) for name in names]

    def score(weights: tuple[float, ...]) -> dict[str, Any]:
        scores = combined(parts, list(weights))
        return evaluation.evaluate_scores(lambda batch: scores[position[batch]], fit_part, validation, k,
                                          with_auc=False)

    def memory(weights: tuple[float, ...]) -> float:
        return sum(r.memory_mb or 0.0 for r, w in zip(ranked, weights) if w > 0)

    tried: dict[tuple[float, ...], dict[str, Any]] = {}

    def search(grid: list[tuple[float, ...]]) -> None:
        for weights in grid:
            weights = tuple(round(w, 6) for w in weights)
            if weights not in tried and (max_memory_mb is None or memory(weights) <= max_memory_mb):
                tried[weights] = score(weights)

    search(_weight_grid(len(names), 0.2))
    if not tried:
        row.status, row.reason = "skipped", f"every blend of {', '.join(names)} is over the memory budget"
        return
    best = max(tried, key=lambda w: (tried[w]["ndcg_at_k"], tried[w]["precision_at_k"]))
    neighbours = []  # 0.1 moved from one component to another
    for j, m in itertools.permutations(range(len(best)), 2):
        if best[m] >= 0.1 - 1e-9:
            weights = [w + 0.1 * (i == j) - 0.1 * (i == m) for i, w in enumerate(best)]
            if sum(w > 1e-9 for w in weights) >= 2:
                neighbours.append(tuple(max(w, 0.0) for w in weights))
    search(neighbours)
    best = max(tried, key=lambda w: (tried[w]["ndcg_at_k"], tried[w]["precision_at_k"]))
    used = [i for i, w in enumerate(best) if w > 0]
    selection.blend_of = tuple(names[i] for i in used)
    selection.blend_weights = tuple(best[i] for i in used)
    metrics = {key: v for key, v in tried[best].items() if key in METRICS and v is not None}
    row.status, row.validation = "scored", metrics
    row.params = {"components": list(selection.blend_of), "weights": list(selection.blend_weights),
                  "weights_tried": len(tried), "of": names}
    row.fit_seconds = round(sum(ranked[i].fit_seconds or 0 for i in used), 3)
    row.memory_mb = round(memory(best), 2)
    selection.fitted[BLEND] = BlendRecommender.of_fitted([selection.fitted[n] for n in selection.blend_of],
                                                         list(selection.blend_weights))
    logger.info("candidate blend %s: validation NDCG@%d %.4f P@%d %.4f (%d weightings tried)",
                " + ".join(f"{n} {w:g}" for n, w in zip(selection.blend_of, selection.blend_weights)), k,
                metrics["ndcg_at_k"], k, metrics["precision_at_k"], len(tried))


def held_out_report(selection: Selection, *, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10) -> None:
    """Each scored candidate's metrics on the caller's held-out part, as fitted on the fit part (ranking
    excludes all of `train`), into its row's `held_out` (AUC only for the chosen one); then the fitted candidates
    are let go. Called after the choice is made: it never changes it."""
    if test.nnz:
        for name, model in selection.fitted.items():  # AUC (the costly part) for the chosen one only
            result = evaluation.evaluate_scores(model.score_items, train, test, k, with_auc=name == selection.chosen)
            selection.results[name].held_out = {key: result[key] for key in METRICS if result[key] is not None}
    selection.fitted.clear()


# --- the candidates the service and bench/quality.py select from ----------------------------------------------
DEFAULT_CANDIDATES = ("lightfm", "lightfm_hybrid", "ease", "als", "blend")
CANDIDATE_NAMES = ("lightfm", "lightfm_hybrid", "ease", "als", "bpr", "blend", "popularity")
LIGHTFM_FAMILY = ("lightfm", "lightfm_hybrid")


def candidates_for_size(names: list[str] | tuple[str, ...], *, interactions: int,
                        hybrid_max_interactions: int | None = HYBRID_MAX_INTERACTIONS) -> tuple[list[str], str | None]:
    """(the candidate names for a type of that many interactions, why the hybrid was left out or None): LightFM
    hybrid is the costliest fit, for the data where identity factors have too little to learn from; above
    `hybrid_max_interactions` (None or 0: never) it is left out."""
    if "lightfm_hybrid" in names and hybrid_max_interactions and interactions > hybrid_max_interactions:
        return [n for n in names if n != "lightfm_hybrid"], (
            f"{interactions:,} interactions > MUSICBUD_HYBRID_MAX_INTERACTIONS ({hybrid_max_interactions:,})")
    return list(names), None


def candidate_factories(names: list[str] | tuple[str, ...], *, threads: int, random_state: int | None,
                        lightfm_params: dict[str, Any] | None = None, item_features: sp.csr_matrix | None = None,
                        feature_names: list[str] | None = None, ease_max_items: int | None = None
                        ) -> dict[str, Callable[[], RecommenderBase]]:
    """name -> factory of an unfitted candidate, for select_model (BLEND is select_model's `blend` flag, not a
    factory). lightfm_params: LightFM's (SERVICE_DEFAULTS with the run's epochs); item_features: the hybrid's
    (ai/item_features.py; without them the hybrid is left out, it would be plain LightFM)."""
    from ai.recommendation_engine import SERVICE_DEFAULTS, make_recommender

    unknown = [n for n in names if n not in CANDIDATE_NAMES]
    if unknown:
        raise ValueError(f"unknown candidate(s) {', '.join(unknown)}; use {', '.join(CANDIDATE_NAMES)}")
    lightfm = {**SERVICE_DEFAULTS, **(lightfm_params or {}), "num_threads": threads, "random_state": random_state}
    params: dict[str, dict[str, Any]] = {
        "lightfm": lightfm,
        "lightfm_hybrid": {**lightfm, "item_features": item_features, "feature_names": feature_names},
        "ease": {} if ease_max_items is None else {"max_items": ease_max_items},
        "als": {"num_threads": threads, "random_state": random_state},
        "bpr": {"num_threads": threads, "random_state": random_state},
        "popularity": {},
    }
    factories: dict[str, Callable[[], RecommenderBase]] = {}
    for name in names:
        if name == BLEND or (name == "lightfm_hybrid" and (item_features is None or item_features.shape[1] == 0)):
            continue
        factories[name] = (lambda engine=name, p=params[name]: make_recommender(engine, **p))
    return factories

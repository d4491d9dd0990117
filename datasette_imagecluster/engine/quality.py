"""How well a clustering agrees with labels the user already has, and the search for parameters that agree best.

Pairwise precision and recall over label indices (:class:`LabelIndex`), and :func:`tune`'s guarded,
cross-validated search.
In depth: docs/engine.md, "Agreement with labels, and tune".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from ..errors import ClusterError, LabelError
from .clustering import Params, build_tree, cut_tree, tree_for
from .labels import Labels

# Fewer positive pairs than this say too little to tune on.
MIN_POSITIVE_PAIRS = 10
TUNE_METHODS = ("ward", "average", "complete", "weighted", "single")
TUNE_ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
TUNE_SIMS = tuple(round(s, 2) for s in np.arange(0.20, 0.96, 0.01))
TUNE_PCAS: tuple[int | float | None, ...] = (None,)
TUNE_TAUS = (900.0, 3600.0, 21600.0)  # 15 min, 1 h, 6 h: searched on absolute distances (docs/quality.md)
SMOOTHING = 2  # sims each side averaged into a candidate's score


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    true_pairs: int  # positives put in one cluster
    claimed_pairs: int  # same-cluster pairs of known status
    positive_pairs: int
    clusters: int = 0
    clustered: int = 0

    def as_dict(self) -> dict:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "true_pairs": self.true_pairs,
            "claimed_pairs": self.claimed_pairs,
            "positive_pairs": self.positive_pairs,
            "clusters": self.clusters,
            "clustered": self.clustered,
        }


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


class LabelIndex:
    """Labels as positions in one library (sorted image ids), precomputed for fast scoring.

    With ``focus`` (positions of groups), only pairs touching a photo of those
    groups count: how a fold is scored when its photos are held out, every
    negative it takes part in included (pairs across folds too).
    """

    def __init__(self, labels: Labels, ids: np.ndarray, focus: Iterable[int] | None = None):
        ids = np.asarray(ids)

        def positions(photos: Iterable[int]) -> np.ndarray:
            wanted = np.fromiter(photos, dtype=np.int64)
            at = np.searchsorted(ids, wanted)
            found = (at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == wanted)
            return at[found]

        focus = set(range(len(labels.groups)) if focus is None else focus)
        members, group_of = [], []
        for number, group in enumerate(labels.groups):
            at = positions(sorted(group))
            members.append(at)
            group_of.append(np.full(len(at), number))
        self.members = np.concatenate(members) if members else np.empty(0, np.int64)
        self.group_of = np.concatenate(group_of) if group_of else np.empty(0, np.int64)
        self.in_focus = np.isin(self.group_of, list(focus))
        self.whole = bool(self.in_focus.all())
        self.positives = int(sum(len(m) * (len(m) - 1) // 2 for n, m in enumerate(members) if n in focus))
        # A difference between two grouped photos is already a negative (they are in two groups).
        grouped = set(self.members.tolist())
        focused = set(self.members[self.in_focus].tolist())
        pairs = [(positions([a]), positions([b])) for a, b in sorted(labels.different)]
        pairs = [(int(a[0]), int(b[0])) for a, b in pairs if len(a) and len(b)]
        pairs = [
            (a, b)
            for a, b in pairs
            if not (a in grouped and b in grouped) and (self.whole or a in focused or b in focused)
        ]
        self.diff_a = np.array([a for a, _ in pairs], dtype=np.int64)
        self.diff_b = np.array([b for _, b in pairs], dtype=np.int64)

    def score(self, flat: np.ndarray) -> Score:
        """Agreement of flat cluster labels (0 = in no cluster) with the labels."""
        c = flat[self.members]
        inside = c > 0
        focused = inside & self.in_focus
        tp = _pairs(self.group_of[focused] * (int(c.max(initial=0)) + 1) + c[focused])  # same group and cluster
        same = _pairs(c[inside])
        if not self.whole:  # only pairs touching the focus: all pairs less those among the others
            others = inside & ~self.in_focus
            same -= _pairs(c[others])
        fp_diff = int(np.count_nonzero((flat[self.diff_a] == flat[self.diff_b]) & (flat[self.diff_a] > 0)))
        claimed = same + fp_diff
        precision = tp / claimed if claimed else 1.0
        recall = tp / self.positives if self.positives else 0.0
        sizes = np.bincount(flat)[1:]
        return Score(
            precision,
            recall,
            _f1(precision, recall),
            tp,
            claimed,
            self.positives,
            int(np.count_nonzero(sizes)),
            int(sizes.sum()),
        )


def _pairs(keys: np.ndarray) -> int:
    """Pairs of equal keys (small non-negative integers)."""
    if len(keys) < 2:
        return 0
    keys = keys.astype(np.int64, copy=False)
    # Counting beats sorting where the keys are few (always, but for labels over huge libraries).
    top = int(keys.max())
    counts = np.bincount(keys) if top < 64 * len(keys) + 4096 else np.unique(keys, return_counts=True)[1]
    return int((counts * (counts - 1) // 2).sum())


def flat_clusters(labels: np.ndarray, min_csize: int) -> np.ndarray:
    """fcluster's labels with clusters smaller than min_csize set to 0 (in no cluster)."""
    sizes = np.bincount(labels)
    flat = labels.copy()
    flat[sizes[labels] < max(min_csize, 2)] = 0
    return flat


@dataclass(frozen=True)
class Candidate:
    method: str
    alpha: float
    pca: int | float | None
    sim: float
    tau: float = 3600.0

    def params(self, base: Params) -> Params:
        return Params(
            sim=self.sim,
            alpha=self.alpha,
            method=self.method,
            metric=base.metric,
            min_csize=base.min_csize,
            pca=self.pca,
            distance=base.distance,
            tau=self.tau,
        )


@dataclass
class Tuning:
    """Every candidate's pair counts under each view of the labels, and the choice made from them.

    Views: ``"all"`` (every label), ``("without", k)`` (all but fold k: what a
    choice to be tested on fold k may see, pairs among those photos only) and
    ``("fold", k)`` (what that choice is tested on: fold k's positives and
    every labelled pair touching a fold-k photo).
    """

    candidates: list[Candidate]
    overall: list[Score]
    true: dict  # view -> candidates: positives put in one cluster
    claimed: dict  # view -> candidates: same-cluster pairs of known status
    positives: dict  # view -> positive pairs
    folds: list[Labels]
    prior: Params
    neighbours: sparse.csr_matrix  # candidates x candidates: 1 where the column is in the row's neighbourhood
    chosen: int = -1
    cv: Score | None = None
    min_precision: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> tuple[Candidate, Score]:
        return self.candidates[self.chosen], self.overall[self.chosen]


def fold_split(labels: Labels, folds: int, seed: int = 0) -> list[list[int]]:
    """Group positions in ``folds`` folds, balanced by positive pairs (largest groups dealt first)."""
    rng = np.random.default_rng(seed)
    order = sorted(range(len(labels.groups)), key=lambda i: (-len(labels.groups[i]), rng.random()))
    split: list[list[int]] = [[] for _ in range(folds)]
    weight = [0] * folds
    for i in order:
        k = min(range(folds), key=lambda j: (weight[j], len(split[j])))
        split[k].append(i)
        weight[k] += len(labels.groups[i]) * (len(labels.groups[i]) - 1) // 2
    return split


def tune(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    ids: np.ndarray,
    labels: Labels,
    prior: Params,
    *,
    methods: Sequence[str] = TUNE_METHODS,
    alphas: Sequence[float] = TUNE_ALPHAS,
    sims: Sequence[float] = TUNE_SIMS,
    pcas: Sequence[int | float | None] = TUNE_PCAS,
    taus: Sequence[float] = TUNE_TAUS,
    folds: int = 3,
    min_precision: float | None = None,
    seed: int = 0,
    scale: float | None = None,
    timed: np.ndarray | None = None,
) -> Tuning:
    """Score every candidate against the labels and choose one that holds across folds.

    ``prior`` is where the search starts from (the defaults): it supplies what
    is not searched (metric, min_csize, the distance), and among candidates that the labels
    can't tell apart the one closest to it is chosen. ``taus`` are searched on absolute
    distances only, which also take the content ``scale`` and ``timed`` (see
    :func:`.clustering.build_tree`). Raises LabelError when the labels have too few
    positive pairs among these photos.
    """
    everything = LabelIndex(labels, ids)
    if everything.positives < MIN_POSITIVE_PAIRS:
        raise LabelError(
            f"too few labels to tune on: {everything.positives} positive pairs among fingerprinted photos "
            f"(at least {MIN_POSITIVE_PAIRS} needed); add labels (see 'imagecluster tune --help')"
        )
    split = fold_split(labels, max(2, folds), seed)
    views: dict = {"all": everything}
    for k, part in enumerate(split):
        views["fold", k] = LabelIndex(labels, ids, focus=part)
        views["without", k] = LabelIndex(labels.subset(i for j, p in enumerate(split) if j != k for i in p), ids)
    candidates, overall = [], []
    true: dict = {view: [] for view in views}
    claimed: dict = {view: [] for view in views}
    taus = taus if prior.absolute else (prior.tau,)
    for method, alpha, pca, tau in itertools.product(methods, alphas, pcas, taus):
        if tau != taus[0] and alpha == 0:
            continue  # without time, every tau is the same clustering
        try:
            tree = build_tree(
                vectors,
                timestamps,
                alpha=alpha,
                method=method,
                metric=prior.metric,
                pca=pca,
                sim=min(sims),
                distance=prior.distance,
                tau=tau,
                scale=scale,
                timed=timed,
            )
        except ClusterError:
            continue  # e.g. ward with a non-euclidean metric: not a candidate
        for sim in sims:
            flat = flat_clusters(cut_tree(tree, sim), prior.min_csize)
            candidates.append(Candidate(method, float(alpha), pca, float(sim), float(tau)))
            for view, index in views.items():
                score = index.score(flat)
                true[view].append(score.true_pairs)
                claimed[view].append(score.claimed_pairs)
                if view == "all":
                    overall.append(score)
    if not candidates:
        raise ClusterError("no candidate parameters apply to this metric")
    tuning = Tuning(
        candidates,
        overall,
        {v: np.array(c, dtype=float) for v, c in true.items()},
        {v: np.array(c, dtype=float) for v, c in claimed.items()},
        {v: index.positives for v, index in views.items()},
        [labels.subset(part) for part in split],
        prior,
        _neighbourhood(candidates),
        min_precision=min_precision,
    )
    tuning.chosen = _choose(tuning, "all")
    held_out = [(_choose(tuning, ("without", k)), ("fold", k)) for k in range(len(split))]
    true_held = sum(tuning.true[view][c] for c, view in held_out)
    claimed_held = sum(tuning.claimed[view][c] for c, view in held_out)
    positives_held = sum(tuning.positives[view] for _, view in held_out)
    precision = true_held / claimed_held if claimed_held else 1.0
    recall = true_held / positives_held if positives_held else 0.0
    tuning.cv = Score(precision, recall, _f1(precision, recall), int(true_held), int(claimed_held), int(positives_held))
    # Tuning must earn its keep: if the prior did as well on the held-out folds, keep the prior.
    prior_at = _nearest(candidates, prior)
    if prior_at is not None and tuning.chosen != prior_at:
        true_p = sum(tuning.true[view][prior_at] for _, view in held_out)
        claimed_p = sum(tuning.claimed[view][prior_at] for _, view in held_out)
        p_prior = true_p / claimed_p if claimed_p else 1.0
        r_prior = true_p / positives_held if positives_held else 0.0
        if _objective(p_prior, r_prior, min_precision) >= _objective(precision, recall, min_precision):
            tuning.chosen = prior_at
            tuning.notes.append("the labels show nothing better than the defaults on held-out folds: kept them")
    if min_precision is not None and tuning.overall[tuning.chosen].precision < min_precision:
        tuning.notes.append(f"no candidate reaches precision {min_precision}: chose the most precise")
    return tuning


def _neighbourhood(candidates: list[Candidate]) -> sparse.csr_matrix:
    """Which candidates are each one's neighbours: same method and PCA, sims each side, the alphas next to it.

    Summing a candidate's counts with its neighbours' (``neighbours @ counts``)
    scores a plateau the labels agree on, not a spike that a few pairs happen
    to favour. Built once per search, used by every choice in it.
    """
    where = {(c.method, c.pca, c.tau, c.alpha, c.sim): i for i, c in enumerate(candidates)}
    alphas = sorted({c.alpha for c in candidates})
    sims = sorted({c.sim for c in candidates})
    alpha_at = {a: n for n, a in enumerate(alphas)}
    sim_at = {v: n for n, v in enumerate(sims)}
    min_tau = min((c.tau for c in candidates if c.alpha == 0), default=0.0)  # alpha 0 was built once, at one tau
    rows, cols = [], []
    for i, c in enumerate(candidates):
        a, s = alpha_at[c.alpha], sim_at[c.sim]
        for alpha in alphas[max(0, a - 1) : a + 2]:
            for sim in sims[max(0, s - SMOOTHING) : s + SMOOTHING + 1]:
                j = where.get((c.method, c.pca, c.tau if alpha else min_tau, alpha, sim))
                if j is not None:
                    rows.append(i)
                    cols.append(j)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(candidates), len(candidates)))


def _choose(tuning: Tuning, view) -> int:
    """The candidate to trust under one view of the labels.

    Its pair counts are summed with its neighbours' (a plateau, not a spike);
    the best score less its standard error (from the number of labelled pairs)
    is the bar; of the candidates above it, the one closest to the prior (the
    defaults) wins, so the labels move the parameters only as far as they
    really say.
    """
    cands = tuning.candidates
    true = tuning.neighbours @ tuning.true[view]
    claimed = tuning.neighbours @ tuning.claimed[view]
    positives = np.asarray(tuning.neighbours.sum(axis=1)).ravel() * tuning.positives[view]
    precision = np.divide(true, claimed, out=np.ones_like(true), where=claimed > 0)
    recall = np.divide(true, positives, out=np.zeros_like(true), where=positives > 0)
    if tuning.min_precision is None:
        objective = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    else:
        reaches = precision >= tuning.min_precision
        objective = np.where(reaches, recall, precision - 1.0)  # else: the most precise
    best = int(np.argmax(objective))
    # A score estimated from n labelled pairs is about sqrt(s(1 - s) / n) uncertain.
    n = max(1.0, tuning.positives[view])
    error = float(np.sqrt(max(objective[best] * (1 - objective[best]), 0.0) / n))
    eligible = np.flatnonzero(objective >= objective[best] - error)
    return int(min(eligible, key=lambda i: (_distance(cands[i], tuning.prior), -objective[i])))


def _objective(precision: float, recall: float, min_precision: float | None) -> float:
    if min_precision is None:
        return _f1(precision, recall)
    return recall if precision >= min_precision else precision - 1.0


def _nearest(candidates: list[Candidate], prior: Params) -> int | None:
    """The candidate that is the prior (to the grid's resolution), if the prior was searched."""
    same = [i for i, c in enumerate(candidates) if c.method == prior.method and c.pca == prior.pca]
    if not same:
        return None
    return min(same, key=lambda i: _distance(candidates[i], prior))


def _distance(candidate: Candidate, prior: Params) -> float:
    """How far a candidate is from the prior: another method counts as far as any alpha and sim."""
    return (
        (candidate.method != prior.method) * 2.0
        + (candidate.pca != prior.pca) * 2.0
        + abs(candidate.alpha - prior.alpha)
        + abs(candidate.sim - prior.sim)
        + (abs(np.log2(candidate.tau / prior.tau)) * 0.25 if prior.absolute and candidate.alpha else 0.0)
    )


def score_params(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    ids: np.ndarray,
    labels: Labels,
    params: Params,
    scale: float | None = None,
    timed: np.ndarray | None = None,
) -> Score:
    """One clustering's agreement with the labels."""
    tree = tree_for(vectors, timestamps, params, scale=scale, timed=timed)
    return LabelIndex(labels, ids).score(flat_clusters(cut_tree(tree, params.sim), params.min_csize))

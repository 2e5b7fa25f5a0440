"""How the backtest holds deals out: forward in time, or repeated stratified cross-validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold  # type: ignore[import-untyped]

VALID_SHARE = 0.2
SEED = 0


@dataclass(frozen=True)
class Fold:
    """Row indexes to learn on (in the order the learner should see them) and to hold out."""

    train: np.ndarray
    valid: np.ndarray
    repeat: int = 0


def time_folds(order: np.ndarray | None, share: float = VALID_SHARE) -> list[Fold]:
    """One fold: the oldest rows train (oldest first), the newest `share` are held out."""
    if order is None:
        raise ValueError("a time split needs a time value for every row")
    ranked = np.argsort(order, kind="stable")
    cut = int(round(len(ranked) * (1 - share)))
    return [Fold(ranked[:cut], ranked[cut:])]


def cv_folds(y: np.ndarray, *, folds: int = 5, repeats: int = 2, seed: int = SEED) -> list[Fold]:
    """Repeated stratified k-fold; training rows shuffled, so a learner's newest-slice holdout is a random slice."""
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    rng = np.random.default_rng(seed)
    out = []
    for k, (train, valid) in enumerate(splitter.split(np.zeros(len(y)), y)):
        out.append(Fold(rng.permutation(train), np.sort(valid), repeat=k // folds))
    return out

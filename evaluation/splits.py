"""Train/validation/test splits by occupation, so no occupation is seen in training and scored in test.

``craft_row_split`` reproduces the published CRAFT split (shuffle the (occupation, course) rows, cut at
80/10/10) for comparison only: it puts the same occupation on both sides and inflates test figures.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

SEED = 42
FRACTIONS = (0.8, 0.1, 0.1)


class Split(BaseModel):
    """Occupation URIs per side, each list sorted."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    fractions: tuple[float, float, float]
    train: list[str]
    validation: list[str]
    test: list[str]
    pinned_test: list[str]

    @model_validator(mode="after")
    def _disjoint(self) -> Split:
        train, validation, test = set(self.train), set(self.validation), set(self.test)
        if train & validation or train & test or validation & test:
            raise ValueError("an occupation is in two splits")
        if not set(self.pinned_test) <= test:
            raise ValueError("a pinned occupation is not in test")
        return self

    def side(self, name: str) -> list[str]:
        if name not in ("train", "validation", "test"):
            raise ValueError(f"unknown split {name!r}: train, validation or test")
        return getattr(self, name)


def split_occupations(
    occupations: Iterable[str],
    seed: int = SEED,
    fractions: tuple[float, float, float] = FRACTIONS,
    pinned_test: Iterable[str] = (),
) -> Split:
    """Deterministic occupation split: sorted URIs, ``random.Random(seed)`` shuffle, cut by fractions.

    Pinned occupations (the gold development set) are taken out before shuffling and added to test, so they
    are never trained or tuned on and the rest of the split does not depend on which ones are pinned. The
    sizes are computed on the unpinned occupations: train gets ``int(f_train * n)``, validation
    ``int(f_val * n)``, test the rest plus the pinned ones. A pinned URI not in ``occupations`` still goes to
    test (it may be an external gold occupation).
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    pinned = sorted(set(pinned_test))
    rest = sorted(set(occupations) - set(pinned))
    random.Random(seed).shuffle(rest)
    n_train = int(fractions[0] * len(rest))
    n_validation = int(fractions[1] * len(rest))
    return Split(
        seed=seed,
        fractions=fractions,
        train=sorted(rest[:n_train]),
        validation=sorted(rest[n_train : n_train + n_validation]),
        test=sorted([*rest[n_train + n_validation :], *pinned]),
        pinned_test=pinned,
    )


def craft_row_split(
    pairs: pd.DataFrame, seed: int = SEED, fractions: tuple[float, float, float] = FRACTIONS
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """CRAFT's split, for comparison only: it LEAKS occupations across train and test.

    The rows (one per occupation-course pair) are shuffled with ``DataFrame.sample(frac=1,
    random_state=seed)`` and cut into the first ``int(0.8 n)``, the next ``int(0.1 n)`` and the rest, as the
    published CRAFT dataset script does; an occupation with several courses lands on several sides.
    """
    shuffled = pairs.sample(frac=1, random_state=seed)
    n_train = int(fractions[0] * len(shuffled))
    n_validation = int(fractions[1] * len(shuffled))
    return (
        shuffled.iloc[:n_train],
        shuffled.iloc[n_train : n_train + n_validation],
        shuffled.iloc[n_train + n_validation :],
    )


def leaked_occupations(train: pd.DataFrame, test: pd.DataFrame, column: str = "occupation_uri") -> set[str]:
    """Occupations present on both sides of a split (empty for ``split_occupations``)."""
    return set(train[column]) & set(test[column])

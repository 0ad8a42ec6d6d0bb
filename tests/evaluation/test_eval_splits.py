"""Occupation splits are disjoint, deterministic and keep the gold occupations in test; CRAFT's leaks."""

from __future__ import annotations

import pandas as pd
import pytest

from evaluation.splits import craft_row_split, leaked_occupations, split_occupations

OCCUPATIONS = [f"occ{i:03d}" for i in range(200)]
GOLD = ["occ007", "occ150", "gold-only"]


def test_split_is_disjoint_complete_and_sized() -> None:
    split = split_occupations(OCCUPATIONS, pinned_test=GOLD)
    train, validation, test = set(split.train), set(split.validation), set(split.test)
    assert not (train & validation or train & test or validation & test)
    assert train | validation | test == set(OCCUPATIONS) | {"gold-only"}
    # 198 unpinned: int(0.8 * 198) = 158, int(0.1 * 198) = 19, the other 21 plus the 3 pinned
    assert (len(train), len(validation), len(test)) == (158, 19, 24)


def test_pinned_occupations_are_only_in_test() -> None:
    split = split_occupations(OCCUPATIONS, pinned_test=GOLD)
    assert set(GOLD) <= set(split.test)
    assert not set(GOLD) & (set(split.train) | set(split.validation))
    assert split.pinned_test == sorted(GOLD)


def test_split_is_deterministic_and_input_order_free() -> None:
    first = split_occupations(OCCUPATIONS, seed=42)
    assert split_occupations(list(reversed(OCCUPATIONS)), seed=42) == first
    assert split_occupations(OCCUPATIONS, seed=7).train != first.train


def test_bad_fractions_and_unknown_side_are_rejected() -> None:
    with pytest.raises(ValueError, match="fractions"):
        split_occupations(OCCUPATIONS, fractions=(0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="unknown split"):
        split_occupations(OCCUPATIONS).side("dev")


def test_craft_row_split_leaks_occupations_ours_does_not() -> None:
    pairs = pd.DataFrame(
        [(occ, f"course{j}") for occ in OCCUPATIONS[:50] for j in range(6)],
        columns=["occupation_uri", "course_id"],
    )
    train, validation, test = craft_row_split(pairs, seed=42)
    assert (len(train), len(validation), len(test)) == (240, 30, 30)
    assert pd.concat([train, validation, test]).sort_index().equals(pairs)
    assert leaked_occupations(train, test)  # the same occupation is trained on and tested on
    split = split_occupations(pairs.occupation_uri)
    ours_train = pairs[pairs.occupation_uri.isin(split.train)]
    ours_test = pairs[pairs.occupation_uri.isin(split.test)]
    assert not leaked_occupations(ours_train, ours_test)

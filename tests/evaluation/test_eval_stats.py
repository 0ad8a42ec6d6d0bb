"""Bootstrap CIs and the paired randomization test on cases with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.stats import bootstrap_ci, paired_randomization_test


def test_bootstrap_ci_brackets_the_mean_and_is_seeded() -> None:
    values = np.linspace(0, 1, 50)
    ci = bootstrap_ci(values, seed=42)
    assert ci.low < ci.mean < ci.high
    assert ci.mean == pytest.approx(0.5)
    assert ci == bootstrap_ci(values, seed=42)
    constant = bootstrap_ci([0.3] * 10)
    assert constant.low == pytest.approx(0.3) and constant.high == pytest.approx(0.3)


def test_bootstrap_drops_undefined_queries() -> None:
    ci = bootstrap_ci([1.0, float("nan"), 0.0])
    assert ci.n == 2 and ci.mean == 0.5
    assert bootstrap_ci([]).n == 0


def test_exact_randomization_p_value_by_hand() -> None:
    # 3 queries, differences +1, +1, +1: only all-plus and all-minus of the 8 sign patterns reach |mean| 1.
    result = paired_randomization_test([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert result.exact and result.resamples == 8
    assert result.p_value == pytest.approx(2 / 8)
    assert result.mean_diff == 1.0


def test_identical_systems_are_not_significant_and_keys_are_aligned() -> None:
    a = pd.Series({"q1": 0.2, "q2": 0.9, "q3": 0.4})
    b = pd.Series({"q3": 0.4, "q1": 0.2, "q2": 0.9})  # other order, same queries
    assert paired_randomization_test(a, b).p_value == 1.0
    with pytest.raises(ValueError, match="different queries"):
        paired_randomization_test(a, pd.Series({"q1": 0.2}))


def test_monte_carlo_path_detects_a_clear_difference() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 0.5, size=40)
    result = paired_randomization_test(base + 0.3, base, resamples=2000)
    assert not result.exact
    assert result.p_value == pytest.approx(1 / 2001)

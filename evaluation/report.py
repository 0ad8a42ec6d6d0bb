"""Evaluation outputs: metrics.json, report.md, per_occupation.csv and PNG plots, from per-system results.

Every mean is shown with its bootstrap 95% CI and every system is tested against one named baseline, so a
difference that the query sample cannot support is visible as such.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from evaluation.metrics import NDCG_CUTOFFS, Latency, RunEvaluation, metric_names
from evaluation.stats import SEED, ConfidenceInterval, PairedTest, bootstrap_ci, paired_randomization_test


class SystemResult(BaseModel):
    """One system on one ground truth: per-query table (index occupation URI), means, CIs, extra figures."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str
    k: int
    per_query: pd.DataFrame
    means: dict[str, float]
    cis: dict[str, ConfidenceInterval]
    latency: Latency | None = None
    beyond: dict[str, float] = Field(
        default_factory=dict,
        description="Beyond-accuracy figures, e.g. gap_coverage@10, diversity@10, catalog_coverage, "
        "out_of_catalog_rate.",
    )
    skipped_no_relevant: int = 0


def system_result(
    name: str,
    evaluation: RunEvaluation,
    latency: Latency | None = None,
    beyond: dict[str, float] | None = None,
    per_query_extra: dict[str, dict[str, float]] | None = None,
    resamples: int = 1000,
    seed: int = SEED,
) -> SystemResult:
    """Bundle an evaluation with CIs for every metric column; ``per_query_extra`` adds per-query columns
    (e.g. gap coverage) that get a CI too."""
    frame = evaluation.per_query.copy()
    for column, values in (per_query_extra or {}).items():
        frame[column] = pd.Series(values, dtype=float).reindex(frame.index)
    columns = [*evaluation.means, *(per_query_extra or {})]
    cis = {column: bootstrap_ci(frame[column], resamples=resamples, seed=seed) for column in columns}
    means = {column: cis[column].mean for column in columns}
    return SystemResult(
        name=name,
        k=evaluation.k,
        per_query=frame,
        means=means,
        cis=cis,
        latency=latency,
        beyond=dict(beyond or {}),
        skipped_no_relevant=len(evaluation.skipped_no_relevant),
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _with_ci(ci: ConfidenceInterval | None) -> str:
    if ci is None or ci.n == 0:
        return "–"
    return f"{ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def _significance(
    results: list[SystemResult], baseline: str, metrics: list[str]
) -> dict[str, dict[str, PairedTest]]:
    base = next(r for r in results if r.name == baseline)
    tests: dict[str, dict[str, PairedTest]] = {}
    for result in results:
        if result.name == baseline:
            continue
        tests[result.name] = {
            metric: paired_randomization_test(result.per_query[metric], base.per_query[metric])
            for metric in metrics
            if metric in result.per_query and metric in base.per_query
        }
    return tests


def write_report(
    results: list[SystemResult],
    out_dir: Path,
    baseline: str,
    title: str = "Course retrieval evaluation",
    ground_truth: str = "",
    significance_metrics: list[str] | None = None,
    scatter: tuple[str, str] | None = None,
    labels: dict[str, str] | None = None,
    alpha: float = 0.05,
) -> dict[str, Path]:
    """Write all outputs into ``out_dir``; returns their paths by kind.

    ``scatter`` names the two systems of the per-occupation nDCG@k plot (default: the baseline against the
    best other system by nDCG@k).
    """
    if not results:
        raise ValueError("no system results")
    if baseline not in {r.name for r in results}:
        raise ValueError(f"baseline {baseline!r} is not among the systems {[r.name for r in results]}")
    k = results[0].k
    if any(r.k != k for r in results):
        raise ValueError("systems were evaluated at different k")
    ndcg_k = f"ndcg@{k}"
    significance_metrics = significance_metrics or [ndcg_k, f"map@{k}", f"recall@{k}"]
    tests = _significance(results, baseline, significance_metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "metrics.json",
        "markdown": out_dir / "report.md",
        "csv": out_dir / "per_occupation.csv",
        "curves": out_dir / "metric_at_k.png",
        "scatter": out_dir / "per_occupation_ndcg.png",
    }

    payload = {
        "title": title,
        "ground_truth": ground_truth,
        "k": k,
        "baseline": baseline,
        "significance_test": next(
            (t.test for per in tests.values() for t in per.values()), "paired randomization"
        ),
        "systems": {
            r.name: {
                "queries": len(r.per_query),
                "skipped_no_relevant": r.skipped_no_relevant,
                "means": r.means,
                "ci95": {m: ci.model_dump() for m, ci in r.cis.items()},
                "latency": r.latency.model_dump() if r.latency else None,
                "beyond": r.beyond,
            }
            for r in results
        },
        "significance_vs_baseline": {
            name: {m: t.model_dump() for m, t in per.items()} for name, per in tests.items()
        },
    }
    paths["json"].write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n", encoding="utf-8")

    rows = []
    for r in results:
        frame = r.per_query.reset_index()
        frame.insert(0, "system", r.name)
        if labels:
            frame.insert(2, "occupation", frame.occupation_uri.map(labels).fillna(""))
        rows.append(frame)
    pd.concat(rows, ignore_index=True).to_csv(paths["csv"], index=False, float_format="%.6f")

    paths["markdown"].write_text(
        _markdown(results, tests, baseline, title, ground_truth, k, alpha, paths), encoding="utf-8"
    )
    _plot_curves(results, paths["curves"])
    if scatter is None:
        others = [r for r in results if r.name != baseline]
        best = max(others, key=lambda r: r.means.get(ndcg_k, float("-inf"))) if others else None
        scatter = (baseline, best.name) if best else None
    if scatter:
        _plot_scatter(results, scatter, ndcg_k, paths["scatter"])
    else:
        paths.pop("scatter")
    return paths


def _markdown(
    results: list[SystemResult],
    tests: dict[str, dict[str, PairedTest]],
    baseline: str,
    title: str,
    ground_truth: str,
    k: int,
    alpha: float,
    paths: dict[str, Path],
) -> str:
    metrics = metric_names(k)
    queries = sorted({len(r.per_query) for r in results})
    lines = [f"# {title}", ""]
    if ground_truth:
        lines.append(f"Ground truth: {ground_truth}.")
    lines += [
        f"Queries (occupations) scored: {', '.join(map(str, queries))}; occupations without any relevant "
        "course are not scored. Means with bootstrap 95% CIs (percentile, 1000 resamples, seed 42). "
        f"Graded nDCG (linear gain, ideal from all judged courses); grade ≥ 1 is relevant for the binary "
        f"metrics; map@{k} is real average precision. `judged@{k}`: share of the top {k} that has a "
        "judgment at all; unjudged courses count as not relevant (pool bias).",
        "",
        "## Ranking quality",
        "",
        "| system | " + " | ".join(metrics) + f" | judged@{k} |",
        "|---|" + "---|" * (len(metrics) + 1),
    ]
    for r in results:
        cells = [_with_ci(r.cis.get(m)) for m in [*metrics, f"judged@{k}"]]
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")

    extra_columns = sorted({c for r in results for c in r.cis if c not in metrics and c != f"judged@{k}"})
    beyond_keys = sorted({key for r in results for key in r.beyond})
    lines += [
        "",
        "## Beyond accuracy and latency",
        "",
        "| system | " + " | ".join([*extra_columns, *beyond_keys, "latency p50 ms", "latency p95 ms"]) + " |",
        "|---|" + "---|" * (len(extra_columns) + len(beyond_keys) + 2),
    ]
    for r in results:
        cells = [_with_ci(r.cis.get(c)) for c in extra_columns]
        cells += [_fmt(r.beyond.get(key), 4) for key in beyond_keys]
        cells += [_fmt(r.latency.p50_ms, 1), _fmt(r.latency.p95_ms, 1)] if r.latency else ["–", "–"]
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")

    if tests:
        test_name = next((t.test for per in tests.values() for t in per.values()), "")
        metric_list = list(dict.fromkeys(m for per in tests.values() for m in per))
        lines += [
            "",
            f"## Significance against `{baseline}`",
            "",
            f"{test_name}; Δ = system − {baseline}; * marks p < {alpha}. No correction for multiple "
            "comparisons.",
            "",
            "| system | " + " | ".join(f"Δ {m} (p)" for m in metric_list) + " |",
            "|---|" + "---|" * len(metric_list),
        ]
        for name, per in tests.items():
            cells = []
            for m in metric_list:
                t = per.get(m)
                cells.append(
                    "–"
                    if t is None
                    else f"{t.mean_diff:+.3f} (p={t.p_value:.3g}){' *' if t.p_value < alpha else ''}"
                )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")

    lines += ["", "## Plots", "", f"![nDCG@k]({paths['curves'].name})"]
    if "scatter" in paths:
        lines.append(f"![per-occupation nDCG@{k}]({paths['scatter'].name})")
    lines += ["", f"Per-occupation figures: `{paths['csv'].name}`.", ""]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_curves(results: list[SystemResult], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in results:
        cutoffs = [c for c in (*NDCG_CUTOFFS, r.k) if f"ndcg@{c}" in r.cis]
        cutoffs = sorted(set(cutoffs))
        cis = [r.cis[f"ndcg@{c}"] for c in cutoffs]
        means = [ci.mean for ci in cis]
        errors = [[ci.mean - ci.low for ci in cis], [ci.high - ci.mean for ci in cis]]
        ax.errorbar(cutoffs, means, yerr=errors, marker="o", capsize=3, label=r.name)
    ax.set_xticks(sorted({c for r in results for c in (*NDCG_CUTOFFS, r.k) if f"ndcg@{c}" in r.cis}))
    ax.set_xlabel("k")
    ax.set_ylabel("nDCG@k (mean, 95% CI)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_scatter(results: list[SystemResult], systems: tuple[str, str], metric: str, path: Path) -> None:
    by_name = {r.name: r for r in results}
    x_name, y_name = systems
    joined = pd.concat(
        [by_name[x_name].per_query[metric].rename("x"), by_name[y_name].per_query[metric].rename("y")],
        axis=1,
        join="inner",
    )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
    ax.scatter(joined.x, joined.y, s=18, alpha=0.7)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"{x_name} {metric}")
    ax.set_ylabel(f"{y_name} {metric}")
    above = int((joined.y > joined.x).sum())
    below = int((joined.y < joined.x).sum())
    ax.set_title(f"per occupation: {y_name} better {above}, worse {below}", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

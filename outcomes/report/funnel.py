"""Statistics of areas against England: Wilson score intervals for a proportion and funnel-plot
control limits around England's rate, as in the OHID (formerly PHE) Fingertips methods.

Method (cited in the report and docs/for-evaluators.md):
- Confidence interval of an area's proportion: Wilson score interval (Fingertips technical guide,
  "Confidence intervals for proportions"; Newcombe 1998), from scipy's `binomtest(...).proportion_ci`.
- Control limits: Fingertips funnel plots for proportions (PHEindicatormethods `phe_funnels` and
  `phe_funnel_significance`, Fingertips "Public health methods" guidance) draw, for each denominator
  n, the proportions whose Wilson interval just reaches the benchmark p0. Solving that gives
  p0 ± z·sqrt(p0(1 − p0)/n) (the score test), with z for 0.975 (95% limits, about 2 standard
  deviations) and 0.999 (99.8% limits, about 3).
- An area lies outside the 95% limits exactly when its Wilson 95% interval excludes England's
  rate, so the funnel plot, the interval and the list of significant areas always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from scipy.stats import binomtest, norm

LEVELS = (0.95, 0.998)  # the Fingertips funnel plot's two pairs of control limits


class Significance(StrEnum):
    HIGHER_998 = "higher_998"
    HIGHER_95 = "higher_95"
    SIMILAR = "similar"
    LOWER_95 = "lower_95"
    LOWER_998 = "lower_998"

    @property
    def direction(self) -> int:
        return {"higher_998": 1, "higher_95": 1, "similar": 0, "lower_95": -1, "lower_998": -1}[self.value]


def _check(numerator: int, denominator: int) -> None:
    if denominator is None or numerator is None:
        raise ValueError("numerator and denominator are needed (a suppressed cell has neither)")
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    if not 0 <= numerator <= denominator:
        raise ValueError(f"numerator must be from 0 to the denominator ({denominator}), got {numerator}")


def z_value(level: float) -> float:
    """The two-sided standard normal quantile of a confidence level (0.95 -> 1.96, 0.998 -> 3.09)."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    return float(norm.ppf(1 - (1 - level) / 2))


def wilson_interval(numerator: int, denominator: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of numerator/denominator (5 of 10 at 95%: 0.2366 to 0.7634)."""
    _check(numerator, denominator)
    ci = binomtest(int(numerator), int(denominator)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def control_limits(benchmark: float, denominator: float, level: float) -> tuple[float, float]:
    """Lower and upper funnel limits around `benchmark` (a proportion) for a denominator, clipped to [0, 1]."""
    if not 0 <= benchmark <= 1:
        raise ValueError(f"benchmark must be a proportion from 0 to 1, got {benchmark}")
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    half = z_value(level) * math.sqrt(benchmark * (1 - benchmark) / denominator)
    return max(0.0, benchmark - half), min(1.0, benchmark + half)


def significance(numerator: int, denominator: int, benchmark: float) -> Significance:
    """Where an area's proportion falls against the benchmark's 95% and 99.8% funnel limits."""
    _check(numerator, denominator)
    rate = numerator / denominator
    lo95, hi95 = control_limits(benchmark, denominator, 0.95)
    lo998, hi998 = control_limits(benchmark, denominator, 0.998)
    if rate > hi998:
        return Significance.HIGHER_998
    if rate > hi95:
        return Significance.HIGHER_95
    if rate < lo998:
        return Significance.LOWER_998
    if rate < lo95:
        return Significance.LOWER_95
    return Significance.SIMILAR


@dataclass(frozen=True)
class AreaRate:
    """One area's published numerator and denominator for an indicator, with its statistics."""

    la_code: str
    numerator: int
    denominator: int
    benchmark: float

    @property
    def rate(self) -> float:
        return self.numerator / self.denominator

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.numerator, self.denominator)

    @property
    def significance(self) -> Significance:
        return significance(self.numerator, self.denominator, self.benchmark)


def funnel_curve(benchmark: float, n_min: float, n_max: float, level: float, points: int = 60) -> list[tuple]:
    """(n, lower, upper) at `points` denominators spaced evenly on a log scale from n_min to n_max."""
    n_min, n_max = max(1.0, n_min), max(n_min + 1.0, n_max)
    step = (math.log(n_max) - math.log(n_min)) / (points - 1)
    return [
        (n, *control_limits(benchmark, n, level)) for n in (math.exp(math.log(n_min) + i * step) for i in range(points))
    ]

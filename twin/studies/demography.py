"""Firm demography of a run (entry, exit, survival and revenue growth of the synthetic firms) and the published figures.

The calibration and the validation hold the twin's small firms to what was
measured, beside the anchors' revenue. Every published figure here is for
ALL enterprises (China's new domestic firms, Hangzhou's whole enterprise
stock), not for visual-intelligence firms, whose demography nobody
publishes; so each is used with a discrepancy or band wide enough to cover
that difference, and every label that shows one says "all enterprises".

A :class:`Demography` watches the synthetic (non-anchor) firms of one
model: call :meth:`Demography.after_step` after every step. Its
:meth:`Demography.summary` gives, per year simulated:

- ``entry_rate``: firms founded in the year / the mean of the year's
  opening and closing stock (the usual rate's denominator);
- ``exit_rate``: firms closed in the year / the same mean stock;
- ``survival``: the share of the firms founded in the first simulated year
  still alive when the run ends (``cohort_years`` whole years later);
- ``synthetic_growth``: log growth per year of the synthetic firms' total
  revenue, entrants and closures included, as an industry aggregate grows;
- ``guishang_growth``: log growth per year of the model's own 规上 count
  (its end over its base year, so a back-cast base count cannot make a
  model without growth look right).

``BANDS`` are the accepted ranges, fixed from published figures (never
from the model's own noise): the validation's checks and the calibration's
demographic targets.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..simulation.model import VisionValleyModel

HAZARD_BY_YEAR = (0.016, 0.063, 0.095, 0.08, 0.08, 0.08, 0.08)
"""Annual exit hazard of a new firm in its 1st, 2nd, ... 7th year: 1.6%, 6.3%, 9.5% (the peak), "above 8%" to
year 7, taken as 8% (docs/sources.md#s-saic-exit-by-age: China's new domestic firms since 2000, all sectors)."""

ENTRY_RATE = 0.17
"""Firms founded per year / the enterprise stock, Hangzhou: 145.4k new of 942k (2023), about 15%; private firms
2012–22 about 19% a year (derived, docs/sources.md#s-hz-firm-entry). 0.17 is the middle of the two."""

EXIT_RATE = 0.075
"""Firms closed per year / the stock: China 9.3% (2008) to 6.2% (2012) (docs/sources.md#s-saic-exit-by-age); Hangzhou
private firms 2012–22 about 7% (derived, docs/sources.md#s-hz-firm-entry). 0.075 is the middle of 6.2–9.3%."""

KINDS = ("entry_rate", "exit_rate", "survival", "synthetic_growth", "guishang_growth")
"""The small firms' figures a run is judged on (the validation's checks, the calibration's demographic targets)."""

INFO_SECTOR_SURVIVAL = ((2, 0.63), (4, 0.38))
"""US information-sector establishments born 1998: 63% alive at 2 years, 38% at 4 (docs/sources.md#s-bls-survival):
the low edge of the survival band, a young tech sector's churn where China's all-enterprise figure is the high edge."""

BANDS = {
    "entry_rate": (0.10, 0.285),
    "exit_rate": (0.041, 0.14),
    "synthetic_growth": (0.03, 0.20),
    "guishang_growth": (0.04, 0.36),
}
"""Accepted ranges, fixed. entry_rate: the published 15–19% (``ENTRY_RATE``) divided and multiplied by 1.5 (all
enterprises, not this sector). exit_rate: the published 6.2–9.3% (``EXIT_RATE``), likewise. synthetic_growth: the
published growth of the aggregates that contain these firms, 2020–2023 (docs/sources.md#s-hz-digital-2021: Hangzhou's
digital-economy core value added +11.5% in 2021, +12.4% a year 2020–21, its AI industry +26.9% in 2021 alone;
docs/sources.md#s-hz-2023-growth: digital-core manufacturing +4.5% in 2023): from below the lowest (3%) to
0.20, under the AI industry's single rebound year (ASSUMPTION: a three-year mean of a wider set of firms stays under
it). guishang_growth: no 规上 count before 2023 is published, so the band is the Hangzhou enterprise stock's net growth,
about 12% a year (19% entry less 7% exit, derived, docs/sources.md#s-hz-firm-entry), within a factor of 3 either way
(ASSUMPTION: 规上 counts also grow as firms cross the threshold); it excludes zero growth."""


def survival_band(cohort_years: int) -> tuple[float, float]:
    """Accepted survival of a one-year cohort ``cohort_years`` after its year: US information sector (low) to China's
    all-enterprise hazards (high), both derived the same way (:func:`published_survival`)."""
    (a, sa), (b, sb) = INFO_SECTOR_SURVIVAL
    early, late = 1.0 - sa ** (1.0 / a), 1.0 - (sb / sa) ** (1.0 / (b - a))
    low = published_survival(cohort_years, (early,) * a + (late,) * (b - a))
    return low, published_survival(cohort_years)


def published_survival(cohort_years: int, hazard_by_year: tuple[float, ...] = HAZARD_BY_YEAR) -> float:
    """Published share of a cohort founded evenly over one year still alive ``cohort_years`` whole years after that year ends.

    Derived from ``HAZARD_BY_YEAR``: a firm founded at a uniform moment of
    its year is aged ``cohort_years + u`` (u uniform on [0, 1]) then, so the
    share is the mean of S(k + u), with S the chained annual survival and a
    constant hazard within each year: prod_{i<k}(1 - h_i) x (-h_k / ln(1 - h_k)).
    """
    hazards = hazard_by_year + (hazard_by_year[-1],) * max(0, cohort_years + 1 - len(hazard_by_year))
    chained = math.prod(1.0 - h for h in hazards[:cohort_years])
    h = hazards[cohort_years]
    return chained * (-h / math.log1p(-h))


class Demography:
    """Counts of one run's synthetic firms, kept year by year (``after_step`` after every step)."""

    def __init__(self, model: VisionValleyModel) -> None:
        live = self._live(model)
        firms = model.state.firms
        self.base_revenue = float(firms.revenue[live].sum())
        self.base_guishang = self._guishang(model)
        self.stock = [int(live.sum())]
        self.births, self.exits = [0], [0]
        self.first_year = (model.year, model.year + 1.0)
        self.end_revenue, self.end_guishang = self.base_revenue, self.base_guishang
        self.cohort_alive = 0

    @staticmethod
    def _live(model: VisionValleyModel) -> np.ndarray:
        firms = model.state.firms
        return firms.alive & (firms.anchor < 0)

    @staticmethod
    def _guishang(model: VisionValleyModel) -> float:
        """The 规上 count as a full-city estimate: anchors as they are, synthetic firms / scale (anchors keep their real
        size at any scale, so counted within a scaled total they would damp its growth)."""
        firms, params = model.state.firms, model.params
        big = firms.alive & (firms.revenue >= params.guishang_threshold_cny)
        return float((big & (firms.anchor >= 0)).sum() + (big & (firms.anchor < 0)).sum() / params.scale)

    def after_step(self, model: VisionValleyModel) -> None:
        """Add the month's births and closures; at a year's end, close the year's books."""
        log, firms = model.state.log, model.state.firms
        self.births[-1] += log.firm_births
        self.exits[-1] += log.firm_exits
        if model.steps % 12:
            return
        live = self._live(model)
        self.stock.append(int(live.sum()))
        self.births.append(0)
        self.exits.append(0)
        lo, hi = self.first_year
        self.cohort_alive = int((live & (firms.born >= lo - 1e-4) & (firms.born < hi - 1e-4)).sum())
        self.end_revenue = float(firms.revenue[live].sum())
        self.end_guishang = self._guishang(model)

    def summary(self) -> dict[str, float]:
        """Entry and exit rates (means over the years), the first cohort's survival, revenue and 规上 growth per year."""
        years = len(self.stock) - 1
        if years < 1:
            raise ValueError("a demography needs at least one simulated year")
        mean_stock = [(a + b) / 2.0 for a, b in zip(self.stock, self.stock[1:])]
        return {
            "entry_rate": float(np.mean([b / max(s, 1.0) for b, s in zip(self.births, mean_stock)])),
            "exit_rate": float(np.mean([e / max(s, 1.0) for e, s in zip(self.exits, mean_stock)])),
            "survival": self.cohort_alive / self.births[0] if self.births[0] else math.nan,
            "cohort_years": years - 1,
            "synthetic_growth": math.log(max(self.end_revenue, 1.0) / max(self.base_revenue, 1.0)) / years,
            "guishang_growth": math.log(max(self.end_guishang, 0.5) / max(self.base_guishang, 0.5)) / years,
        }

"""The plan's 2027 targets: one small module that metrics, outputs, maps and studies all read."""

from collections.abc import Mapping

LAST_TARGET_YEAR = 2027
"""The year the targets are set for (docs/sources.md#s-targets-2027): every study judges a run in this year, or in
its last simulated year before it; runs must start by it, and the scenario's default end is it."""

LEADER_100BN_CNY = 1e11
"""千亿 scale: 1000 亿元 of revenue (the 2027 target of 2 such firms, docs/sources.md#s-targets-2027)."""

TARGETS_2027 = {
    "total_scale_cny": (1e12, "total scale 1 万亿元 (core x multiplier)"),
    "revenue_cny": (4e11, "core revenue 4000 亿元"),
    "leaders_100bn": (2, "2 firms at 千亿 scale"),
}
"""The 2027 targets (docs/sources.md#s-targets-2027): metric -> (target, label)."""

def full_scale(figures: Mapping[str, float], scale: float) -> dict[str, float]:
    """The three target metrics of a run at ``params.scale`` as full-city estimates: the anchors' part as simulated,
    plus the other firms' part / ``scale``.

    The anchor firms (params.anchors = 1) are simulated at their real size at any scale, so neither the run's raw
    figure nor a target scaled by ``scale`` is comparable with the city: the anchors alone would meet a scaled target.
    Total scale keeps the run's ratio to core revenue (core x (1 + related_multiplier)). With anchors = 0 the
    estimate leaves the anchors out, so the city's targets are out of reach. At scale 1 or more the figures are
    returned as they are (bit for bit).
    """
    if scale >= 1:
        return {metric: figures[metric] for metric in TARGETS_2027}
    core = figures["anchor_revenue_cny"] + (figures["revenue_cny"] - figures["anchor_revenue_cny"]) / scale
    leaders = figures["anchor_leaders_100bn"] + (figures["leaders_100bn"] - figures["anchor_leaders_100bn"]) / scale
    ratio = figures["total_scale_cny"] / figures["revenue_cny"] if figures["revenue_cny"] else 0.0
    return {"total_scale_cny": core * ratio, "revenue_cny": core, "leaders_100bn": leaders}


MULTIPLIER_TARGETS = ("total_scale_cny",)
"""Target figures built on core revenue x a user-set multiplier (params.related_multiplier), not measured."""

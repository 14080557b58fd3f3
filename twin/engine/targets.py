"""The plan's 2027 targets: one small module that metrics, outputs, maps and studies all read."""

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

def scaled_targets(scale: float) -> dict[str, float]:
    """The 2027 targets a run at ``params.scale`` is judged against: each scaled by ``scale`` below 1.

    A run at scale 0.05 simulates 5 % of the city's firms, so its revenue is that share of the city's and the
    absolute targets cannot apply; the count of 千亿 firms is scaled alike (0.1 firms means at least one).
    """
    return {metric: target * min(scale, 1.0) for metric, (target, _) in TARGETS_2027.items()}


MULTIPLIER_TARGETS = ("total_scale_cny",)
"""Target figures built on core revenue x a user-set multiplier (params.related_multiplier), not measured."""

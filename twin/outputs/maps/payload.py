"""The data a map page shows, reduced from one or two runs (or an ensemble's probability grids) to a compact, JSON-ready dict.

The page must stay small (DESIGN: one self-contained file, under 15 MB at full
scale), so densities are summed onto 1 km cells, every cell position is sent
once and shared by all years and layers, numbers are rounded, and the largest
firms are sent as rows rather than objects. Every name taken from data goes in
as a plain string; the page only ever shows it through ``textContent``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from rasterio.warp import transform as reproject

from layers import WGS84, Grid, LayerStack

from ...engine.params import TRACK_IDS, TRACKS, Params
from ...engine.targets import TARGETS_2027
from ...policy.scenario import Scenario
from ...simulation.run import RunResult
from ..tables import comparison_table
from .names import district_of, firm_name

CELL_M = 1000.0
"""Edge of the map's density cells: 1 km keeps a full-scale run to a few MB and draws fast."""

SIMPLIFY_DEG = 0.001
"""Boundary simplification (about 100 m): invisible at city zoom, cuts the boundaries tenfold."""

COORD_DIGITS = 4
"""Decimal places of longitude and latitude (about 10 m)."""

FIGURES = ("total_scale_cny", "revenue_cny", "leaders_100bn", "firms", "talent", "compute_pflops")
"""The key figures the panel shows, in order."""

ZONE_ORDER = ("wide", "four", "core", "window")
"""Zones drawn bottom to top, so the 一园 window park is always visible."""

WAN = 1e4
"""Densities are sent in 万元 (10^4 CNY) per km², as integers."""

PERMILLE = 1000
"""Probabilities are sent in per mille, as integers; a cell above zero is sent as at least 1."""

PROBABILITY_BREAKS = [100, 250, 500, 750, 900]
"""Fixed class breaks of the probability layer (per mille): one 0-100 % scale for every ensemble and year."""

BASEMAP_SIMPLIFY_DEG = 0.0005
"""Simplification of the base map's water, built-up land and metro lines (about 50 m): quiet background, small page."""

REVENUE_FLOOR_WAN = 1000
"""Cells under 1,000 万元 (0.1 亿) of yearly revenue per km² are not drawn: scattered small firms in farmland
and forest would otherwise lay a carpet over the city; the legend says so, the tooltip figures stay exact."""

CREDITS = (
    "© OpenStreetMap contributors (ODbL) — metro",
    "Natural Earth — rivers, urban areas",
    "GSHHG — shorelines",
    "高德 via cnmaps — districts",
)
"""The base map's sources, shown in a corner of every map (gis_data/README.md gives their licences)."""


def build(result: RunResult, other: RunResult | None = None, pairs: list[tuple[RunResult, RunResult]] | None = None) -> dict:
    """Everything the page needs: geography, per-year layers and figures, scales and targets.

    ``pairs`` (result-side, other-side runs on shared seeds) make the difference layer their mean, shaded where
    they agree, and the key figures their means with the paired 90 % interval of the difference.
    """
    runs = [result] if other is None else [result, other]
    years = _common_years(runs)
    data = _base(result.layers, result.params.scale) | {
        "mode": "single" if other is None else "compare",
        "runs": [_run_meta(r.scenario, r.seed) for r in runs],
        "years": years,
    }
    factor = max(1, round(CELL_M / result.grid.cell_m))
    if other is None:
        data["figures"] = [[_figures(result.year(y).figures) for y in years]]
        data.update(_density_layers(result, years, factor))
        districts = result.layers.districts
        data["firms"] = [_firms(result.year(y).top_firms, districts) for y in years]
        data["compute"] = [_compute(result.year(y).compute) for y in years]
        data["parks"] = [_parks(result.year(y).parks) for y in years]
    else:
        data.update(paired_figures(pairs or [(result, other)], years))
        data.update(_difference_layer(result, other, years, factor, pairs))
    return data


def paired_figures(pairs: list[tuple[RunResult, RunResult]], years: list[int]) -> dict:
    """The comparison's key figures per year: each side's mean over the pairs and the mean paired difference
    with its 90 % interval, as ``[difference, low, high]`` (low and high null for one pair).

    They come from :func:`comparison_table`, the function behind comparison.csv and the terminal summary, so
    the map can never show one member's figures under a legend that speaks of the mean.
    """
    table = comparison_table([other for _, other in pairs], [run for run, _ in pairs])
    city = table[(table["level"] == "city") & table["metric"].isin(FIGURES)].set_index(["year", "metric"])

    def row(year: int, key: str, *columns: str) -> list[float | None]:
        found = (year, key) in city.index
        return [_round(float(city.loc[(year, key), c])) if found else None for c in columns]

    return {
        "figures": [[{k: row(y, k, side)[0] for k in FIGURES} for y in years] for side in ("mean_b", "mean_a")],
        "paired": {"pairs": len(pairs), "seeds": [int(run.seed) for run, _ in pairs],
                   "difference": [{k: row(y, k, "difference", "ci90_low", "ci90_high") for k in FIGURES} for y in years]},
    }


def build_probability(probability: Mapping[str | int, np.ndarray], stack: LayerStack, spec: Scenario, members: int,
                      seed: int, targets: Mapping | None = None) -> dict:
    """An ensemble's map: per year and 1 km cell, the mean share of members whose revenue grew there, over the base map.

    ``probability`` maps years to grids on ``stack.grid`` (as
    ``Aggregate.probability`` returns them); ``targets`` is one point of
    targets.json (or the whole file without a sweep, whose first point is used).
    """
    years = sorted(int(y) for y in probability)
    grids = {int(y): np.asarray(g) for y, g in probability.items()}
    for year, grid in grids.items():
        if grid.shape != tuple(stack.grid.shape):
            raise ValueError(f"the probability grid of {year} has shape {grid.shape}, the layers' grid is {tuple(stack.grid.shape)}")
    factor = max(1, round(CELL_M / stack.grid.cell_m))
    cells_per_block = _coarse(np.ones(stack.grid.shape), factor)  # edge blocks hold fewer real cells
    means = [_coarse(grids[y], factor) / cells_per_block for y in years]
    used = np.any([m > 0 for m in means], axis=0)
    values = [np.where(m[used] > 0, np.maximum(1, np.rint(m[used] * PERMILLE)), 0).astype(np.int64).tolist() for m in means]
    scale = Params().with_overrides(spec.params).scale
    return _base(stack, scale) | {
        "mode": "probability",
        "runs": [_run_meta(spec, seed)],
        "years": years,
        "ensemble": {"members": int(members), "seed": int(seed), "scale": _round(scale)},
        "chances": _chances(targets),
        "cells": _cells(stack.grid, factor, used),
        "probability": {"values": values, "breaks": PROBABILITY_BREAKS},
    }


def _chances(targets: Mapping | None) -> dict | None:
    """The probability (and 90% interval) of meeting each 2027 target, and all three, from targets.json."""
    if targets is not None and "points" in targets:
        targets = targets["points"][0]
    if not targets or targets.get("year") is None or not targets.get("targets"):
        return None
    report = targets["targets"]
    return {"year": int(targets["year"]), "targets": {k: _chance(report[k]) for k in (*TARGETS_2027, "all") if k in report}}


def _chance(report: Mapping) -> dict:
    """One target's probability and its Wilson 90% interval, rounded."""
    return {"probability": _round(float(report["probability"])), "ci90": [_round(float(v)) for v in report["probability_ci90"]]}


def _common_years(runs: list[RunResult]) -> list[int]:
    """Years every run has: a comparison can only show years both runs reached."""
    common = set.intersection(*({s.year for s in r.years} for r in runs))
    if not common:
        spans = ", ".join(f"{r.scenario.name}: {r.years[0].year}-{r.years[-1].year}" for r in runs)
        raise ValueError(f"the runs share no year to compare ({spans})")
    return sorted(common)


LANDMARKS = (
    ("water", "west_lake", "西湖", "West Lake", None),
    ("water", "qiantang_estuary", "钱塘江", "Qiantang River", (120.32, 30.268)),
    ("water", "xianghu", "湘湖", "Xianghu Lake", None),
    ("anchors", "future_sci_city", "未来科技城", "Future Sci-Tech City", None),
)
"""Landmarks a visitor knows, labelled at the opening view: (layer, id, 中文, English, where to put the label).

The label goes at the feature's point nearest to the given position (the Qiantang east of 钱江新城, clear of the
district names, not somewhere on its 600 km² estuary), else at its representative point. A layer file without the id
(a user's water file) simply has no such label."""


def _landmarks(stack: LayerStack) -> list[dict]:
    """The landmarks present in ``stack``: label position, names, and for lakes their shape (drawn over the
    revenue cells of their shores) and the box tilted columns must keep clear."""
    found = []
    for layer, ident, zh, en, near in LANDMARKS:
        frame = getattr(stack, layer)
        rows = frame[frame["id"] == ident] if "id" in frame.columns else frame.iloc[:0]
        if rows.empty:
            continue
        geometry = rows.geometry.union_all()
        point = shapely.ops.nearest_points(geometry, shapely.Point(near))[0] if near else geometry.representative_point()
        landmark = {"pos": [_deg(point.x), _deg(point.y)], "name": [zh, en], "clear": None}
        if layer == "water" and rows["kind"].iloc[0] == "lake":
            landmark |= {"clear": [_deg(b) for b in geometry.bounds],
                         "shape": _rounded_geojson(shapely.simplify(geometry, BASEMAP_SIMPLIFY_DEG, preserve_topology=True))}
        found.append(landmark)
    return found


def _present_bounds(stack: LayerStack, landmarks: list[dict]) -> list[float]:
    """Where presentation mode opens: around the labels of the landmarks and of the districts in the plan's zones
    (not 全域), so every one of them is on screen at a legible zoom."""
    planned = stack.zones[stack.zones["zone"] != "wide"].geometry.union_all() if len(stack.zones) else None
    points = [lm["pos"] for lm in landmarks]
    for geometry in stack.districts.geometry:
        label = geometry.representative_point()
        if planned is None or planned.contains(label):
            points.append([label.x, label.y])
    lon, lat = np.array(points).T
    return [_deg(lon.min()), _deg(lat.min()), _deg(lon.max()), _deg(lat.max())]


def _base(stack: LayerStack, scale: float) -> dict:
    """What every map shows whatever its mode: the base map, the zones, the places, the tracks, the targets and the
    run's params.scale (below 1 the page draws no bar of a simulated figure towards an absolute target)."""
    landmarks = _landmarks(stack)
    return {
        "targets": {k: v for k, (v, _) in TARGETS_2027.items()},
        "scale": _round(scale),
        "bounds": _focus_bounds(stack.zones, stack.districts),
        "present_bounds": _present_bounds(stack, landmarks),
        "landmarks": landmarks,
        "districts": _features(stack.districts, ("name_zh", "name_en")),
        "zones": _features(_zone_order(stack.zones), ("zone", "name_zh", "name_en", "approximate")),
        "places": _places(stack.anchors),
        "tracks": [list(t) for t in TRACKS],
        "basemap": _basemap(stack),
        "credits": list(CREDITS),
    }


def _basemap(stack: LayerStack) -> dict:
    """Water (lakes and rivers), built-up land and the metro lines in their own colours, simplified for a quiet background."""
    return {
        "water": _features(stack.water, ("name_zh", "name_en", "kind"), BASEMAP_SIMPLIFY_DEG),
        "urban": _features(stack.urban, (), BASEMAP_SIMPLIFY_DEG),
        "metro": _features(stack.metro, ("ref", "name", "colour"), BASEMAP_SIMPLIFY_DEG),
    }


def _run_meta(spec: Scenario, seed: int) -> dict:
    """Name, bilingual title, seed and whether the title came from a parent through ``extends``.

    The page shows only the titles (a missing one falls back to the other
    language, then to the name); ``inherited`` is the scenario title's own flag.
    """
    inherited = spec.title.inherited
    return {"name": spec.name, "zh": spec.title.zh or spec.title.en or spec.name, "en": spec.title.en or spec.title.zh or spec.name,
            "seed": int(seed), "inherited": inherited}


def _figures(figures: dict[str, float]) -> dict[str, float | None]:
    """The panel's figures, rounded so the file does not carry float noise."""
    return {k: _round(figures.get(k)) for k in FIGURES}


def _round(value: float | None, digits: int = 6) -> float | None:
    """A finite number to ``digits`` significant digits; JSON has no NaN, so missing becomes null."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0
    rounded = round(value, digits - 1 - math.floor(math.log10(abs(value))))
    return int(rounded) if rounded == int(rounded) else rounded


def _focus_bounds(zones: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> list[float]:
    """Where the map opens: the planned zones without 全域, else the whole city."""
    focus = zones[zones["zone"] != "wide"]
    bounds = (focus if len(focus) else districts).total_bounds
    return [round(float(b), COORD_DIGITS) for b in bounds]


def _zone_order(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Zones in drawing order; unknown zone ids (user tables) go under the named ones."""
    rank = zones["zone"].map({z: i for i, z in enumerate(ZONE_ORDER)}).fillna(-1)
    return zones.iloc[np.argsort(rank.to_numpy(), kind="stable")]


def _features(frame: gpd.GeoDataFrame, columns: tuple[str, ...], tolerance: float = SIMPLIFY_DEG) -> list[dict]:
    """Simplified geometries as GeoJSON features, with a label point on each one."""
    features = []
    for row in frame.itertuples(index=False):
        geometry = shapely.simplify(row.geometry, tolerance, preserve_topology=True)
        label = row.geometry.representative_point()
        features.append(
            {
                "type": "Feature",
                "geometry": _rounded_geojson(geometry),
                "properties": {c: _plain(getattr(row, c)) for c in columns} | {"label": [_deg(label.x), _deg(label.y)]},
            }
        )
    return features


def _rounded_geojson(geometry) -> dict:
    """GeoJSON of a geometry with coordinates rounded to COORD_DIGITS."""
    rounded = shapely.set_precision(geometry, 10.0**-COORD_DIGITS)
    return shapely.geometry.mapping(rounded if not rounded.is_empty else geometry)


def _plain(value) -> bool | str:
    """Flags as JSON booleans and everything else as text (a missing name as ""); text is never altered."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return _text(value)


def _text(value) -> str:
    """A name from data as a string; None or NaN (an empty field in a user's file) becomes ""."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _deg(value: float) -> float:
    """A longitude or latitude rounded to the map's precision."""
    return round(float(value), COORD_DIGITS)


def _places(anchors: gpd.GeoDataFrame) -> list[list]:
    """Named places (platforms, firms, universities, landmarks) as [lon, lat, name_zh, name_en, kind]."""
    return [[_deg(p.x), _deg(p.y), _text(zh), _text(en), _text(kind)] for p, zh, en, kind in zip(anchors.geometry, anchors["name_zh"], anchors["name_en"], anchors["kind"])]


def _coarse(grid: np.ndarray, factor: int) -> np.ndarray:
    """Sum a grid over factor x factor blocks (padding the edge with zeros)."""
    rows, cols = grid.shape
    padded = np.pad(grid.astype(np.float64), ((0, -rows % factor), (0, -cols % factor)))
    return padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).sum(axis=(1, 3))


def _cells(grid: Grid, factor: int, used: np.ndarray) -> dict:
    """Centres of the used coarse cells in WGS-84, and the cell edge in metres."""
    rows, cols = np.nonzero(used)
    x, y = grid.transform @ ((cols + 0.5) * factor, (rows + 0.5) * factor)
    lon, lat = reproject(grid.crs, WGS84, np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return {"lon": np.round(lon, COORD_DIGITS).tolist(), "lat": np.round(lat, COORD_DIGITS).tolist(), "size_m": grid.cell_m * factor}


def _per_km2(grids: list[np.ndarray], used: np.ndarray, cell_km2: float, unit: float) -> list[list[int]]:
    """Each year's values on the used cells, as integer densities per km² in ``unit``."""
    return [np.rint(g[used] / cell_km2 / unit).astype(np.int64).tolist() for g in grids]


def _density_layers(result: RunResult, years: list[int], factor: int) -> dict:
    """Firm revenue (万元/km²) and talent (people/km²) on shared 1 km cells, with their class breaks."""
    revenue = [_coarse(result.year(y).revenue, factor) for y in years]
    talent = [_coarse(result.year(y).talent, factor) for y in years]
    used = np.any([g > 0 for g in revenue + talent], axis=0)
    cell_km2 = (result.grid.cell_m * factor / 1000.0) ** 2
    revenue_values = _per_km2(revenue, used, cell_km2, WAN)
    talent_values = _per_km2(talent, used, cell_km2, 1.0)
    return {
        "cells": _cells(result.grid, factor, used),
        "revenue": {"values": revenue_values, "floor": REVENUE_FLOOR_WAN,
                    "breaks": nice_breaks([[v for v in year if v >= REVENUE_FLOOR_WAN] for year in revenue_values])},
        "talent": {"values": talent_values, "breaks": nice_breaks(talent_values)},
    }


AGREEMENT = 0.9
"""Share of paired seeds that must agree on the sign of a cell's difference for it to be shaded."""


def _difference_layer(result: RunResult, other: RunResult, years: list[int], factor: int,
                      pairs: list[tuple[RunResult, RunResult]] | None = None) -> dict:
    """Mean revenue density of ``result`` minus ``other`` over paired seeds (万元/km²) on 1 km cells, with diverging breaks.

    With two or more pairs a cell keeps its mean difference only where at
    least ``AGREEMENT`` of the pairs agree on its sign, so noise is not shaded
    as an effect; with one pair the difference is shown as is and the legend
    says it is a single seed.
    """
    pairs = pairs or [(result, other)]
    if any(a.grid != b.grid for a, b in pairs):
        raise ValueError(f"the runs use different grids ({result.scenario.name}: {result.grid.shape}, {other.scenario.name}: {other.grid.shape}); compare runs on the same grid")
    diffs = np.array([[_coarse(a.year(y).revenue, factor) - _coarse(b.year(y).revenue, factor) for y in years] for a, b in pairs])
    used = np.any([(_coarse(a.year(y).revenue, factor) > 0) | (_coarse(b.year(y).revenue, factor) > 0) for a, b in pairs for y in years], axis=0)
    mean = diffs.mean(axis=0)
    if len(pairs) > 1:
        agree = (np.sign(diffs) == np.sign(mean)).mean(axis=0) >= AGREEMENT
        mean = np.where(agree & (mean != 0), mean, 0.0)
    cell_km2 = (result.grid.cell_m * factor / 1000.0) ** 2
    values = _per_km2(list(mean), used, cell_km2, WAN)
    n = len(pairs)
    note = ([f"{n} 组同种子配对的均值；仅在至少 {AGREEMENT:.0%} 的配对符号一致处着色", f"mean of {n} paired seeds; shaded only where at least {AGREEMENT:.0%} of the pairs agree on the sign"]
            if n > 1 else ["单一种子：差值含随机噪声，未做符号检验", "single seed: the difference includes noise; no sign test"])
    return {"cells": _cells(result.grid, factor, used),
            "difference": {"values": values, "breaks": nice_breaks(values, (0.5, 0.75, 0.9, 0.97)), "pairs": n, "note": note}}


def nice_breaks(values: list[list[int]], quantiles: tuple[float, ...] = (0.5, 0.75, 0.9, 0.97, 0.995)) -> list[float]:
    """Class breaks at round numbers (1, 2, 5 x 10^k) near quantiles of the non-zero magnitudes.

    The densities are very skewed (one cell holds 海康威视), so equal steps
    would put nearly every cell in the lowest class; quantiles spread the
    colours, rounding keeps the legend readable, and pooling every year keeps
    one scale across the slider.
    """
    pooled = np.abs(np.concatenate([np.asarray(v, dtype=float) for v in values] or [np.zeros(0)]))
    pooled = pooled[pooled > 0]
    if pooled.size == 0:
        return [1]
    return sorted({_nice(q) for q in np.quantile(pooled, quantiles)})


def _nice(value: float) -> float:
    """The nearest of 1, 2, 5 x 10^k at or below ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return max(s for s in (1, 2, 5) if s * power <= value) * power


def _firms(top: pd.DataFrame, districts: gpd.GeoDataFrame) -> list[list]:
    """The year's largest firms as [lon, lat, name_zh, name_en, track index, revenue 万元, employees, district index].

    Named firms carry the firm's name; a synthesized firm has none, and the page names it by its district
    (the index into the payload's districts, -1 outside them) rather than hiding it among "other firms".
    """
    track = top["track"].map({t: i for i, t in enumerate(TRACK_IDS)}).fillna(-1).astype(int)
    district = district_of(top["lon"].to_numpy(), top["lat"].to_numpy(), districts)
    return [
        [_deg(lon), _deg(lat), firm_name(_text(zh)), firm_name(_text(en)), int(t), int(round(rev / WAN)), int(emp), int(d)]
        for lon, lat, zh, en, t, rev, emp, d in zip(top["lon"], top["lat"], top["name_zh"], top["name_en"], track,
                                                    top["revenue_cny"], top["employees"], district)
    ]


def _compute(compute: pd.DataFrame) -> list[list]:
    """Compute centres online, merged per site, as [lon, lat, PFLOPS, centres]: sites share a point."""
    sites = compute.assign(lon=compute["lon"].round(COORD_DIGITS), lat=compute["lat"].round(COORD_DIGITS))
    merged = sites.groupby(["lon", "lat"], sort=True)["pflops"].agg(["sum", "size"]).reset_index()
    return [[float(r.lon), float(r.lat), _round(float(r.sum)), int(r.size)] for r in merged.itertuples(index=False)]


def _parks(parks: pd.DataFrame) -> list[list]:
    """Parks online as [lon, lat, floor m², zone id]."""
    return [[_deg(lon), _deg(lat), int(round(floor)), _text(zone)] for lon, lat, floor, zone in zip(parks["lon"], parks["lat"], parks["floor_m2"], parks["zone"])]

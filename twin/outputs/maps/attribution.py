"""The attribution map (``attribution_map.html``): one layer a lever, the core revenue it caused per km².

Each layer colours the 1 km cells by the lever's Shapley value of core revenue
in the judged year divided by the cell's area (CNY/km², diverging around 0:
green where the lever added revenue, red where it took some away); the
``all`` layer is the scenario minus no levers. District outlines are drawn
on top; each zone's (一园, 双核, 四区, 全域 overlap) and district's value per km²
from attribution.csv is listed beside. One self-contained page: inline SVG,
inline script and style admitted by hash, no network; Chinese and English at
the press of a button.
"""

from __future__ import annotations

import base64
import hashlib
import os

import numpy as np
import pandas as pd

from layers import LayerStack

from ..folder import write_file
from . import embed_json

SIZE = 640
"""Width of the drawing in SVG units."""

SCALE_QUANTILE = 0.99
"""The colour scale ends at this quantile of the cells' absolute values (over every layer), so one outlying
cell does not wash the rest out; cells beyond it take the end colour and the legend says "≥"."""

SCRIPT = """
const D = JSON.parse(document.getElementById('d').textContent);
let lang = 'zh', lever = 0;
const T = {title: ['各政策杠杆带来的核心收入（元/平方公里，1公里网格）', 'Core revenue each lever caused (CNY per km², 1 km cells)'],
  zones: ['园区与区县（元/平方公里）', 'Zones and districts (CNY per km²)'], lang: ['English', '中文'],
  all: ['全部杠杆', 'all levers'], unit: ['元/平方公里', 'CNY/km²'], cell: ['网格', 'cell']};
const t = k => T[k][lang === 'zh' ? 0 : 1];
const fmt = v => Math.round(v).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en');
const colour = v => { if (v === 0) return 'none'; const s = Math.min(1, Math.abs(v) / D.max); const c = Math.round(235 * (1 - s));
  return v > 0 ? `rgb(${c},${Math.round(235 - 110 * s)},${c})` : `rgb(235,${c},${c})`; };
function draw() {
  document.getElementById('title').textContent = `${D.scenario} · ${D.year} · ${t('title')}`;
  document.getElementById('lang').textContent = t('lang');
  const picks = document.getElementById('levers'); picks.replaceChildren();
  D.levers.forEach((name, i) => { const b = document.createElement('button'); b.type = 'button';
    b.textContent = name === 'all' ? t('all') : name; b.className = i === lever ? 'on' : '';
    b.onclick = () => { lever = i; draw(); }; picks.appendChild(b); });
  const values = D.cells.values[lever];
  document.querySelectorAll('rect[data-c]').forEach(r => r.setAttribute('fill', colour(values[+r.dataset.c])));
  document.getElementById('map').dataset.lever = D.levers[lever];
  const z = document.getElementById('zones'); z.replaceChildren();
  const h = document.createElement('h2'); h.textContent = t('zones'); z.appendChild(h);
  [...D.zones, ...D.districts].forEach(r => { const p = document.createElement('p');
    p.textContent = `${lang === 'zh' ? r.zh : r.en}: ${fmt(r.values[lever])}`; z.appendChild(p); });
  const l = document.getElementById('legend'); l.replaceChildren();
  [-D.max, -D.max / 2, 0, D.max / 2, D.max].forEach((v, i) => { const s = document.createElement('span');
    s.style.background = v === 0 ? '#fff' : colour(v); s.textContent = (i === 0 ? '≤' : i === 4 ? '≥' : '') + fmt(v); l.appendChild(s); });
  const u = document.createElement('span'); u.textContent = t('unit'); l.appendChild(u);
}
document.getElementById('lang').onclick = () => { lang = lang === 'zh' ? 'en' : 'zh'; draw(); };
document.getElementById('map').onmouseover = e => { const c = e.target.dataset && e.target.dataset.c;
  document.getElementById('hover').textContent = c === undefined ? '' : `${t('cell')}: ${fmt(D.cells.values[lever][+c])} ${t('unit')}`; };
draw();
"""

STYLE = ("body{font:14px sans-serif;margin:12px}#levers button{margin:2px}#levers .on{font-weight:bold;background:#ddd}"
         "#legend span{display:inline-block;padding:2px 8px;margin-right:2px}main{display:flex;gap:24px}"
         "path{fill:none;stroke:#555;stroke-width:.6;pointer-events:none}#hover{min-height:1.2em}")


def write_attribution_map(path: str | os.PathLike[str], spec, table: pd.DataFrame, year: int, stack: LayerStack,
                          cells: np.ndarray, factor: int, layers: dict[str, np.ndarray]) -> None:
    """Write the page to ``path``.

    ``cells`` are flat indices into the grid summed over ``factor`` x
    ``factor`` blocks (1 km cells), ``layers`` per lever label
    (``all`` last) the revenue difference on those cells in CNY; the zone and
    district figures come from ``table`` (attribution.csv).
    """
    rows = table[(table["year"].astype(int) == year) & (table["metric"] == "revenue_cny") & (table["track"] == "")]
    levers = list(layers)
    block_km2 = (stack.grid.cell_m * factor / 1000.0) ** 2
    districts = stack.districts.reset_index(drop=True)
    projected = districts.to_crs(stack.grid.crs)
    area = projected.area.to_numpy() / 1e6
    density = [np.rint(layers[lever] / block_km2).astype(np.int64) for lever in levers]
    data = {"scenario": spec.name, "year": int(year), "levers": levers,
            "cells": {"km2": block_km2, "values": [d.tolist() for d in density]},
            "districts": [{"zh": r.name_zh, "en": r.name_en,
                           "values": [_per_km2(rows, lever, "district", r.name_zh, a) for lever in levers]}
                          for r, a in zip(districts.itertuples(), area)],
            "zones": [{"zh": r.name_zh, "en": r.name_en,
                       "values": [_per_km2(rows, lever, "zone", r.zone, r.area_km2) for lever in levers]}
                      for r in stack.zones.itertuples()]}
    data["max"] = colour_scale(density)
    page = _page(embed_json(data), _svg(projected, stack, factor, cells))
    write_file(path, page)


def colour_scale(density: list[np.ndarray]) -> float:
    """The end of the diverging colour scale: a high quantile of every layer's nonzero |CNY/km²|, at two significant digits."""
    values = np.abs(np.concatenate(density)) if density else np.zeros(0)
    values = values[values > 0]
    if not len(values):
        return 1.0
    top = float(np.quantile(values, SCALE_QUANTILE))
    digits = 10 ** (int(np.floor(np.log10(top))) - 1)
    return float(np.ceil(top / digits) * digits)


def _per_km2(rows: pd.DataFrame, lever: str, level: str, name: str, area_km2: float) -> int:
    """A lever's revenue difference in one district or zone, in CNY per km² (rounded)."""
    hit = rows[(rows["lever"] == lever) & (rows[level] == name)]["value"]
    return int(np.rint(hit.sum() / area_km2)) if len(hit) and area_km2 > 0 else 0


def _svg(projected, stack: LayerStack, factor: int, cells: np.ndarray) -> str:
    """The 1 km cells (``data-c`` = position in the data) under the district outlines, in projected metres
    scaled to ``SIZE`` wide, north up."""
    x0, y0, x1, y1 = projected.total_bounds
    k = SIZE / (x1 - x0)
    edge = stack.grid.cell_m * factor
    cols = -(-stack.grid.shape[1] // factor)
    west, north = stack.grid.transform.c, stack.grid.transform.f
    rows_, cols_ = np.divmod(np.asarray(cells, dtype=np.int64), cols)
    rects = "".join(f'<rect data-c="{i}" x="{(west + c * edge - x0) * k:.1f}" y="{(y1 - north + r * edge) * k:.1f}" '
                    f'width="{edge * k:.2f}" height="{edge * k:.2f}"/>' for i, (r, c) in enumerate(zip(rows_, cols_)))
    paths = []
    for geom in projected.geometry:
        polys = getattr(geom, "geoms", [geom])
        d = " ".join("M" + "L".join(f"{(x - x0) * k:.1f},{(y1 - y) * k:.1f}" for x, y in p.exterior.coords) + "Z" for p in polys)
        paths.append(f'<path d="{d}"/>')
    return f'<svg id="map" viewBox="0 0 {SIZE} {(y1 - y0) * k:.0f}" width="{SIZE}"><g>{rects}</g>{"".join(paths)}</svg>'


def _page(data: str, svg: str) -> str:
    """The self-contained page; its script and style are admitted by hash, nothing may be fetched."""
    digest = lambda text: base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()  # noqa: E731
    csp = f"default-src 'none'; script-src 'sha256-{digest(SCRIPT)}'; style-src 'sha256-{digest(STYLE)}'"
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}"><title>attribution · 归因</title>'
            f'<style>{STYLE}</style></head><body><h1 id="title"></h1><button id="lang" type="button"></button>'
            f'<div id="levers"></div><div id="legend"></div><div id="hover"></div><main>{svg}<section id="zones"></section></main>'
            f'<script type="application/json" id="d">{data}</script><script>{SCRIPT}</script></body></html>')

"""The attribution map (``attribution_map.html``): one layer a lever, the core revenue it caused per km².

Districts are coloured by each lever's Shapley value of core revenue in the
judged year divided by the district's area (万元/km²), diverging around 0;
the zones (一园, 双核, 四区, 全域 overlap) are listed beside with their own
value per km². One self-contained page: inline SVG, inline script and style
admitted by hash, no network; Chinese and English at the press of a button.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from layers import METRIC_CRS, LayerStack

from . import embed_json

WAN = 1e4
"""Values are shown in 万元 (10^4 CNY) per km²."""

SIZE = 640
"""Width of the drawing in SVG units."""

SCRIPT = """
const D = JSON.parse(document.getElementById('d').textContent);
let lang = 'zh', lever = 0;
const T = {title: ['各政策杠杆的收入贡献（万元/平方公里）', 'Revenue each lever caused (10^4 CNY per km²)'],
  zones: ['园区', 'Zones'], lang: ['English', '中文'], all: ['全部杠杆', 'all levers']};
const t = k => T[k][lang === 'zh' ? 0 : 1];
const colour = v => { const s = Math.min(1, Math.abs(v) / (D.max || 1)); const c = Math.round(255 * (1 - s));
  return v >= 0 ? `rgb(${c},${Math.round(255 - 120 * s)},${c})` : `rgb(255,${c},${c})`; };
function draw() {
  document.getElementById('title').textContent = `${D.scenario} · ${D.year} · ${t('title')}`;
  document.getElementById('lang').textContent = t('lang');
  const picks = document.getElementById('levers'); picks.replaceChildren();
  D.levers.forEach((name, i) => { const b = document.createElement('button'); b.type = 'button';
    b.textContent = name === 'all' ? t('all') : name; b.className = i === lever ? 'on' : '';
    b.onclick = () => { lever = i; draw(); }; picks.appendChild(b); });
  document.querySelectorAll('path[data-i]').forEach(p => { const d = D.districts[+p.dataset.i];
    const v = d.values[lever]; p.setAttribute('fill', colour(v));
    p.querySelector('title').textContent = `${lang === 'zh' ? d.zh : d.en}: ${v.toLocaleString()}`; });
  const z = document.getElementById('zones'); z.replaceChildren();
  const h = document.createElement('h2'); h.textContent = t('zones'); z.appendChild(h);
  D.zones.forEach(r => { const p = document.createElement('p');
    p.textContent = `${lang === 'zh' ? r.zh : r.en}: ${r.values[lever].toLocaleString()}`; z.appendChild(p); });
  const l = document.getElementById('legend'); l.replaceChildren();
  [-D.max, -D.max / 2, 0, D.max / 2, D.max].forEach(v => { const s = document.createElement('span');
    s.style.background = colour(v); s.textContent = Math.round(v).toLocaleString(); l.appendChild(s); });
}
document.getElementById('lang').onclick = () => { lang = lang === 'zh' ? 'en' : 'zh'; draw(); };
draw();
"""

STYLE = ("body{font:14px sans-serif;margin:12px}#levers button{margin:2px}#levers .on{font-weight:bold;background:#ddd}"
         "#legend span{display:inline-block;padding:2px 8px;margin-right:2px}main{display:flex;gap:24px}"
         "path{stroke:#555;stroke-width:.5}")


def write_attribution_map(path: str | os.PathLike[str], spec, table: pd.DataFrame, year: int, stack: LayerStack) -> None:
    """Write the page to ``path``: per lever (and ``all``), each district's and zone's revenue difference per km²."""
    rows = table[(table["year"].astype(int) == year) & (table["metric"] == "revenue_cny") & (table["track"] == "")]
    levers = list(dict.fromkeys(rows["lever"]))
    districts = stack.districts.reset_index(drop=True)
    metric = districts.to_crs(METRIC_CRS)
    area = metric.area.to_numpy() / 1e6
    data = {"scenario": spec.name, "year": int(year), "levers": levers,
            "districts": [{"zh": r.name_zh, "en": r.name_en,
                           "values": [_per_km2(rows, lever, "district", r.name_zh, a) for lever in levers]}
                          for r, a in zip(districts.itertuples(), area)],
            "zones": [{"zh": r.name_zh, "en": r.name_en,
                       "values": [_per_km2(rows, lever, "zone", r.zone, r.area_km2) for lever in levers]}
                      for r in stack.zones.itertuples()]}
    data["max"] = max([abs(v) for d in data["districts"] for v in d["values"]] or [0]) or 1
    page = _page(embed_json(data), _svg(metric))
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)


def _per_km2(rows: pd.DataFrame, lever: str, level: str, name: str, area_km2: float) -> int:
    """A lever's revenue difference in one district or zone, in 万元 per km² (rounded)."""
    hit = rows[(rows["lever"] == lever) & (rows[level] == name)]["value"]
    return int(np.rint(hit.sum() / WAN / area_km2)) if len(hit) and area_km2 > 0 else 0


def _svg(metric) -> str:
    """The districts as SVG paths in projected metres, scaled to ``SIZE`` wide, north up."""
    x0, y0, x1, y1 = metric.total_bounds
    k = SIZE / (x1 - x0)
    paths = []
    for i, geom in enumerate(metric.geometry):
        polys = getattr(geom, "geoms", [geom])
        d = " ".join("M" + "L".join(f"{(x - x0) * k:.1f},{(y1 - y) * k:.1f}" for x, y in p.exterior.coords) + "Z" for p in polys)
        paths.append(f'<path data-i="{i}" d="{d}"><title></title></path>')
    return f'<svg viewBox="0 0 {SIZE} {(y1 - y0) * k:.0f}" width="{SIZE}">{"".join(paths)}</svg>'


def _page(data: str, svg: str) -> str:
    """The self-contained page; its script and style are admitted by hash, nothing may be fetched."""
    digest = lambda text: base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()  # noqa: E731
    csp = f"default-src 'none'; script-src 'sha256-{digest(SCRIPT)}'; style-src 'sha256-{digest(STYLE)}'"
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}"><title>attribution · 归因</title>'
            f'<style>{STYLE}</style></head><body><h1 id="title"></h1><button id="lang" type="button"></button>'
            f'<div id="levers"></div><div id="legend"></div><main>{svg}<section id="zones"></section></main>'
            f'<script type="application/json" id="d">{data}</script><script>{SCRIPT}</script></body></html>')

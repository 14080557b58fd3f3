"""Writing a run's files (metrics.csv, firms.parquet, density.tif, map.html, manifest.json) and a comparison's.

The caller hands a temporary folder from :func:`twin.outputs.folder.atomic_folder`,
which is renamed into place only when complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

import layers

from ..policy.scenario import Scenario
from ..simulation.run import RunResult, simulate
from . import progress
from .folder import atomic_folder
from .manifest import manifest, result_record, write_manifest
from .rasters import write_density
from .tables import write_csv, write_firms


def run_and_write(spec: Scenario, seed: int | None, out: Path, *, firm_years: Iterable[int] | None = None, png: bool = False,
                  lang: str = "zh", frames: bool = False, on_month: Callable[[int, int], None] | None = None) -> RunResult:
    """Simulate one run and write its folder ``out`` whole: the one run path of a plain run, of --from-manifest
    and of the studio, so each writes the same bytes for the same scenario and seed. ``on_month(done, total)``
    follows the simulation (:func:`twin.outputs.progress.months` makes one for a terminal or a log)."""
    stack = layers.load(**spec.layer_arguments())
    result = simulate(spec, seed, stack=stack, firm_years=firm_years, progress=on_month)
    with atomic_folder(out) as folder:
        write_run(result, folder, png=png, lang=lang, frames=frames)
    return result


def write_run(result: RunResult, folder: Path, *, png: bool = False, lang: str = "zh", frames: bool = False) -> None:
    """Write every output of one run into ``folder`` (a temporary folder from :func:`atomic_folder`), the
    manifest last, since it lists every file written before it."""
    progress.stage("writing metrics.csv, firms.parquet, density.tif and map.html")
    write_csv(result.metrics, folder / "metrics.csv")
    write_firms(result, folder / "firms.parquet")
    write_density(result, folder / "density.tif")
    _write_map(folder, result, None, png, lang)
    if frames:
        from .frames import write_frames

        progress.stage(f"rendering one {lang} slide per year and map_{lang}.gif (headless Chromium)")
        write_frames(folder / "map.html", folder, lang)
    firm_years = [snap.year for snap in result.years if snap.firms is not None]
    options = {"png": png, "lang": lang, "firm_years": firm_years, "frames": frames}
    write_manifest(folder, manifest("run", [result_record(result)], options=options))


def write_comparison(a: list[RunResult], b: list[RunResult], table: pd.DataFrame, folder: Path, *, png: bool = False,
                     lang: str = "zh") -> None:
    """The paired table (comparison.csv) and the map of B − A, shaded where the pairs agree on the sign."""
    progress.stage("writing comparison.csv and the comparison map")
    write_csv(table, folder / "comparison.csv")
    _write_map(folder, b[0], a[0], png, lang, pairs=list(zip(b, a)))


def _write_map(folder: Path, result: RunResult, other: RunResult | None, png: bool, lang: str,
               pairs: list[tuple[RunResult, RunResult]] | None = None) -> None:
    """map.html, opening in ``lang`` (and map_zh.png, map_en.png) from :mod:`twin.outputs.maps`."""
    from . import maps

    maps.write_map(folder / "map.html", result, other, pairs=pairs, lang=lang)
    if png:
        progress.stage("rendering map_zh.png and map_en.png (headless Chromium)")
        maps.write_pngs(folder / "map.html", folder)

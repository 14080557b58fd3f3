"""One PNG slide per year of a map and an animated GIF of the years, for a presentation (``--frames``).

The slides come from :func:`twin.outputs.maps.slides`: the page in
presentation mode without controls, in one language, one browser page for
every year. The GIF is made with Pillow (which matplotlib already requires),
so an animation needs no video encoder.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from . import maps
from .folder import atomic_file, write_file

FRAME_MS = 1500
"""How long the animation shows each year: the pace of the page's own Play button."""


def write_frames(html_path: Path, folder: Path, lang: str) -> tuple[list[Path], Path]:
    """Write ``frames/map_<lang>_<year>.png`` for every year of the map at ``html_path`` and ``map_<lang>.gif``.

    ``folder`` is a run's temporary output folder (from ``atomic_folder``); each file goes through the one
    atomic file writer all the same. Returns the frames' paths and the GIF's.
    """
    years = maps.map_years(html_path)
    shots = maps.slides(html_path, years, lang)
    (folder / "frames").mkdir(exist_ok=True)
    paths = [folder / "frames" / f"map_{lang}_{year}.png" for year in years]
    for path, png in zip(paths, shots):
        write_file(path, png)
    gif = folder / f"map_{lang}.gif"
    write_gif([Image.open(io.BytesIO(png)) for png in shots], gif)
    return paths, gif


def write_gif(images: list[Image.Image], path: Path) -> None:
    """An endlessly looping GIF of ``images``, each on its own 256-colour palette (maps need their full range)."""
    frames = [image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT) for image in images]
    with atomic_file(path) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0)

"""SAR archive search: embed a whole archive (chips or GeoTIFF scenes) with a SARCLIP model into a FAISS index, then
find the tiles that match a text, a SAR image, or both.

    python -m train index MODEL DATA --out INDEX_DIR        # build (resumable)
    python -m train search INDEX_DIR "two ships near a breakwater" [--image chip.tif] [--k 20] [--out results/]
    python demo/app.py --model MODEL --index INDEX_DIR       # web demo (Gradio, Space-ready)

`build` writes the index, `archive.ArchiveIndex` answers queries, `results` writes what a search shows.
"""

from .archive import ArchiveIndex, render_sar
from .build import IndexSettings, build_index
from .manifest import ArchiveIndexError

__all__ = ["ArchiveIndex", "ArchiveIndexError", "IndexSettings", "build_index", "render_sar"]

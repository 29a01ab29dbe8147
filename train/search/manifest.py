"""An archive index folder's manifest (`manifest.json`): what was indexed, how, and with which model.

The model is named by its folder or Hub id and identified by a fingerprint of the files that decide its embeddings
(weights, config, processor settings); a query with any other model is refused, since its embeddings live in another
space and the hits would be meaningless.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "manifest.json"
ITEMS = "items"  # the `datasets` folder (Dataset.save_to_disk): ids, paths or footprints, labels, embeddings
FAISS_FILE = "embedding.faiss"
FORMAT = "sar-vlm archive index"
VERSION = 1
FINGERPRINT_FILES = ("config.json", "processor_config.json", "preprocessor_config.json", "adapter_config.json")
REQUIRED = ("model", "model_fingerprint", "rows", "embedding_dim", "kind", "source", "index_factory")


class ArchiveIndexError(ValueError):
    """A missing, corrupt or mismatched index folder (the message names the file and how to fix it)."""


def model_fingerprint(model_dir: Path) -> str:
    """sha256 over the model folder's weight files (*.safetensors) and the configs that decide its embeddings."""
    digest = hashlib.sha256()
    files = sorted(model_dir.glob("*.safetensors")) + [model_dir / name for name in FINGERPRINT_FILES]
    for path in files:
        if not path.is_file():
            continue
        digest.update(path.name.encode())
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def read_manifest(index_dir: Path) -> dict:
    path = index_dir / MANIFEST
    if not index_dir.is_dir():
        raise ArchiveIndexError(f"{index_dir}: no such index folder (build one with `python -m train index MODEL DATA "
                          f"--out {index_dir}`)")
    if not path.is_file():
        raise ArchiveIndexError(f"{path}: missing; {index_dir} is not a finished archive index (rebuild it with "
                          "`python -m train index`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArchiveIndexError(f"{path}: corrupt ({err}); rebuild the index with `python -m train index`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveIndexError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise ArchiveIndexError(f"{path}: index format version {manifest.get('version')}, this package reads "
                                f"{VERSION}; "
                          "rebuild the index")
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        raise ArchiveIndexError(f"{path}: corrupt, missing {', '.join(missing)}; rebuild the index")
    return manifest


def check_same_model(manifest: dict, model: str, fingerprint: str, index_dir: Path) -> None:
    if fingerprint != manifest["model_fingerprint"]:
        raise ArchiveIndexError(
            f"{index_dir}: the index was built with the model {manifest['model']} (fingerprint "
            f"{manifest['model_fingerprint'][:12]}), and {model} is a different model ({fingerprint[:12]}): its "
            f"embeddings are not comparable. Query with {manifest['model']}, or build an index with {model} "
            f"(`python -m train index {model} {manifest['source']} --out NEW_INDEX`)"
        )

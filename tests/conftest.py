"""Shared fixtures: the real SAR data folder (../shared/data by default, SAR_DATA_DIR overrides)."""

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAR_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread per test: tiny models run several times faster on one thread, and on a shared 2-core
    machine two threads made small ops tens of times slower (OpenMP spinning). Restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sar_data_dir() -> Path:
    path = Path(os.environ.get("SAR_DATA_DIR", DEFAULT_SAR_DATA_DIR))
    if not path.is_dir():
        pytest.skip(f"real SAR data folder not found: {path} (set SAR_DATA_DIR)")
    return path


UTM_33N_KEYS = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633)  # projected, pixel is area, EPSG 32633


def write_geotiff(path, data, geokeys=UTM_33N_KEYS, pixel_m=(10.0, 10.0), origin=(500000.0, 4500000.0), nodata=None,
                  extra=()):
    """A GeoTIFF as tifffile writes it: pixel scale, one tie point at pixel (0, 0), the GeoKeyDirectory, and
    GDAL_NODATA when `nodata` is given."""
    import tifffile

    tags = [(33550, "d", 3, (*pixel_m, 0.0)), (33922, "d", 6, (0, 0, 0, *origin, 0)),
            (34735, "H", len(geokeys), geokeys), *extra]
    if nodata is not None:
        tags.append((42113, "s", 0, str(nodata)))
    tifffile.imwrite(path, data, extratags=tags)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


class OfflineHub:
    """Stands in for the Hugging Face Hub without network.

    `HfApi.create_repo` / `create_commit` / `_validate_yaml` (the README metadata check) are redirected here; every commit becomes a snapshot in a local HF
    cache (``<cache>/models--org--name/snapshots/<sha>/`` + ``refs/main``), the layout `from_pretrained("org/name")`
    reads with ``HF_HUB_OFFLINE=1``. Everything above `HfApi` (transformers' `push_to_hub`, `upload_folder`) is real.
    """

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir
        self.commits: list[tuple[str, list[str]]] = []  # (repo_id, paths in repo)

    def repo_folder(self, repo_id: str, repo_type: str | None = None) -> Path:
        return self.cache_dir / f"{repo_type or 'model'}s--{repo_id.replace('/', '--')}"

    def snapshot(self, repo_id: str, repo_type: str | None = None) -> Path:
        folder = self.repo_folder(repo_id, repo_type)
        return folder / "snapshots" / (folder / "refs" / "main").read_text()

    def create_repo(self, repo_id, *, repo_type=None, exist_ok=False, **_):
        from huggingface_hub import RepoUrl

        folder = self.repo_folder(repo_id, repo_type)
        if folder.exists() and not exist_ok:
            raise FileExistsError(repo_id)
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    @staticmethod
    def validate_yaml(content: str, **_):
        """The Hub's README metadata check, done locally: the YAML front matter must parse to a mapping."""
        from huggingface_hub import metadata_load

        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as card:
            card.write(content)
        if not isinstance(metadata_load(card.name), dict):
            raise ValueError("Invalid metadata in README.md: no YAML front matter")

    def create_commit(self, repo_id, operations, *, commit_message, repo_type=None, commit_description=None, **_):
        import hashlib
        import shutil

        from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete

        folder = self.repo_folder(repo_id, repo_type)
        if not (folder / "refs").is_dir():
            raise FileNotFoundError(f"repository {repo_id} was never created")
        sha = hashlib.sha1(f"{repo_id}{len(self.commits)}{commit_message}".encode()).hexdigest()
        target = folder / "snapshots" / sha
        if (folder / "refs" / "main").exists():
            shutil.copytree(self.snapshot(repo_id, repo_type), target)
        target.mkdir(parents=True, exist_ok=True)
        for operation in operations:
            path = target / operation.path_in_repo
            if isinstance(operation, CommitOperationAdd):
                path.parent.mkdir(parents=True, exist_ok=True)
                with operation.as_file() as source:
                    path.write_bytes(source.read())
            elif isinstance(operation, CommitOperationDelete):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        (folder / "refs" / "main").write_text(sha)
        self.commits.append((repo_id, [op.path_in_repo for op in operations]))
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{sha}", commit_message=commit_message,
                          commit_description=commit_description or "", oid=sha)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> OfflineHub:
    """A fake Hub (see `OfflineHub`); the process runs with HF_HUB_OFFLINE and its HF cache is the hub's cache."""
    from huggingface_hub import HfApi, constants, hf_api

    hub = OfflineHub(tmp_path / "hf_hub_cache")
    monkeypatch.setattr(HfApi, "create_repo", lambda api, *args, **kwargs: hub.create_repo(*args, **kwargs))
    monkeypatch.setattr(HfApi, "create_commit", lambda api, *args, **kwargs: hub.create_commit(*args, **kwargs))
    monkeypatch.setattr(HfApi, "_validate_yaml", lambda api, *args, **kwargs: hub.validate_yaml(*args, **kwargs))
    # upload_folder's streamed Xet pipeline talks to the storage backend directly; the plain single-commit path
    # (used when hf_xet is not installed) goes through create_commit
    monkeypatch.setattr(hf_api, "is_xet_available", lambda: False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub.cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub.cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub

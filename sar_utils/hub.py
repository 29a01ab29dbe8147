"""The one Hub upload of this project's folders (converted and trained models, datasets): create the repo if needed,
upload the folder in one commit. Without network or credentials it is a `ConnectionError` that says so."""

import importlib
from pathlib import Path


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The Hub client's "could not reach the server" errors (huggingface_hub 2 uses httpx2, 1.x httpx); they are
    not OSErrors."""
    for name in ("httpx2", "httpx"):
        try:
            return (importlib.import_module(name).TransportError,)
        except ImportError:
            continue
    return ()


def push_folder(folder: str | Path, repo_id: str, repo_type: str = "model", private: bool = False,
                commit_message: str = "Upload with sar-vlm", token: str | None = None, shown: str | Path | None = None):
    """Upload `folder` to the Hub repo `repo_id` (created, private if asked, when it does not exist); errors name
    `shown` (default: `folder`), e.g. the user's folder when a prepared copy of it goes up."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        return api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                                 commit_message=commit_message)
    except (OfflineModeIsEnabled, HfHubHTTPError, OSError, *_transport_errors()) as err:
        if isinstance(err, (FileNotFoundError, PermissionError)):
            raise
        raise ConnectionError(f"cannot push {shown or folder} to the Hub repo {repo_id} ({type(err).__name__}: {err}); "
                              "check the network and your login (`hf auth login` or HF_TOKEN), then run the push "
                              "again: the folder itself is complete") from err

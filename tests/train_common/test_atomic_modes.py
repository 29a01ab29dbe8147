"""Outputs written through `sar_utils.atomic` get the permissions of any other file the user creates (the umask),
not the private 0700 of their temporary folder."""

import os
import stat

from sar_utils.atomic import atomic_folder


def test_an_atomically_written_folder_honours_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_folder(tmp_path / "out") as folder:
            (folder / "model.safetensors").write_bytes(b"weights")
        os.umask(0o002)
        with atomic_folder(tmp_path / "group") as folder:
            pass
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "model.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "group").stat().st_mode) == 0o775

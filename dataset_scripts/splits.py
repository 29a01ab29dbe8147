"""Deterministic train/test assignment for sources that ship no split (OpenSARShip, detection samples, tables)."""

from __future__ import annotations

import hashlib


def hash_split(group_key: str, seed: int, test_fraction: float) -> str:
    """"test" for a stable ``test_fraction`` of group keys, else "train".

    The decision depends only on (seed, group key), so it does not change when items are added or reordered, and
    every item of a group (e.g. the VV and VH chips of one ship) lands in the same split.
    """
    digest = hashlib.sha1(f"{seed}/{group_key}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"

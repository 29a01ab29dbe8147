"""The training data order of every trainer: a permutation that depends only on (seed, epoch), so that a resumed run
sees exactly the batches the uninterrupted one would have."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """A permutation that depends only on (seed, epoch): the data order of a resumed run equals the original one."""

    def __init__(self, num_samples: int, seed: int):
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(np.random.default_rng((self.seed, self.epoch)).permutation(self.num_samples).tolist())

    def __len__(self) -> int:
        return self.num_samples

"""`EpochBatches`: a trainer's batches, epoch by epoch, whatever their source (open_clip's `DataInfo` idea): a
map-style DataLoader over an epoch-seeded sampler (prepared by Accelerate), or a stream of parquet shards that each
process reads its own part of. The loop asks for an epoch's batches, resumed after the batches already done, and never
branches on which."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from accelerate import Accelerator
from accelerate.utils import send_to_device


class EpochBatches:
    """`loader`'s batches. `epochs`: what `set_epoch` is called on (the sampler, the prepared loader, or the stream).
    `streamed`: the loader is a stream's own (not prepared: its batches go to the device here, and it resumes
    inside an epoch by itself); otherwise Accelerate skips the batches already done."""

    def __init__(self, accelerator: Accelerator, loader: Iterable, epochs, streamed: bool = False):
        self.accelerator, self.loader, self.epochs, self.streamed = accelerator, loader, epochs, streamed

    def epoch(self, epoch: int, done: int = 0) -> Iterable[dict]:
        """Epoch `epoch`'s batches after its first `done`."""
        if self.streamed:
            self.epochs.set_epoch(epoch, done)  # the stream resumes inside the epoch, exactly
            return self._on_device()
        self.epochs.set_epoch(epoch)
        return self.accelerator.skip_first_batches(self.loader, done) if done else self.loader

    def _on_device(self) -> Iterator[dict]:
        for batch in self.loader:
            yield send_to_device(batch, self.accelerator.device, non_blocking=True)


__all__ = ["EpochBatches"]

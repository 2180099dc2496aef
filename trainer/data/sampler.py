"""The step-indexed sampler every run uses: epochs of a seeded DistributedSampler, resumable at
any step, each sample paired with a seed for its augmentation.

Because the sample order and every random crop and flip are functions of (seed, epoch,
index), a run resumed at step N sees exactly the batches a run that never stopped would see,
and with WORLD_SIZE > 1 each rank reads its own shard.
"""
from __future__ import annotations

from torch.utils.data import DistributedSampler, Sampler


class _Length:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A deterministic 62-bit seed for one sample's augmentation."""
    return ((seed * 1_000_003 + epoch) * 1_000_033 + index) % (2 ** 62)


class StepSampler(Sampler):
    """Infinite stream of ``(index, sample_seed)`` for this rank, starting at ``start_step``."""

    def __init__(self, dataset_len: int, batch_size: int, seed: int = 0, start_step: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True):
        if dataset_len < 1:
            raise ValueError("the dataset is empty")
        self.n, self.batch_size, self.seed = dataset_len, batch_size, seed
        self.start_step, self.rank, self.world_size, self.shuffle = start_step, rank, world_size, shuffle

    def _epoch_indices(self, epoch: int) -> list[int]:
        ds = DistributedSampler(_Length(self.n), num_replicas=self.world_size, rank=self.rank,
                                shuffle=self.shuffle, seed=self.seed, drop_last=False)
        ds.set_epoch(epoch)
        return list(ds)

    def __iter__(self):
        per_epoch = len(self._epoch_indices(0))
        epoch, offset = divmod(self.start_step * self.batch_size, per_epoch)
        while True:
            for index in self._epoch_indices(epoch)[offset:]:
                yield index, sample_seed(self.seed, epoch, index)
            epoch, offset = epoch + 1, 0

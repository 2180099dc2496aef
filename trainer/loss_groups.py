"""The loss plots' groups: each method declares the group of every loss key its training step
logs (``Method.loss_groups``); the studio's plots and ``metrics.jsonl`` readers use these names.
No torch here, so the studio can read it at start-up."""
from __future__ import annotations

DISCRIMINATOR = "discriminator"
GENERATOR = "generator"
REGULARISATION = "reconstruction / regularisation"
LOSS_GROUPS = (DISCRIMINATOR, GENERATOR, REGULARISATION)

#: metrics.jsonl keys that are never losses (learning rates ``lr_*`` neither)
NOT_LOSSES = frozenset({"step", "time", "elapsed", "it_s", "sample_diversity"})


def group_of(key: str, declared: dict[str, str] | None = None) -> str | None:
    """The plot a ``metrics.jsonl`` key belongs to: one of :data:`LOSS_GROUPS`, or None for a key
    that is not a loss (step, time, rates, throughput, sample diversity, learning rates). A key the
    run's method declares (``declared``: ``Method.loss_groups``) goes where declared; a loss key it
    does not declare (a plugin method that declares none) goes to :data:`REGULARISATION`."""
    if key in NOT_LOSSES or key.startswith("lr_"):
        return None
    group = (declared or {}).get(key)
    return group if group in LOSS_GROUPS else REGULARISATION

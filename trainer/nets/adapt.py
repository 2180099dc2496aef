"""Nets that can load the state of an earlier shape of themselves.

A resume may change a setting that widens a layer (BicycleGAN's ``model.encoder_grid``: the
encoder's heads read a grid of cells instead of one pooled vector). Such a net inherits
:class:`AdaptsState`; the run loop (:func:`trainer.run.checkpoints.load_nets`) passes a
checkpoint's state through :meth:`AdaptsState.adapt_state` before the strict load.
"""
from __future__ import annotations

from torch import Tensor


class AdaptsState:
    """Mixin for a net (an ``nn.Module``) whose checkpoints may hold an earlier shape of it."""

    def adapt_state(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """``state`` (a checkpoint's tensors for this net, keyed as its ``state_dict()``) fitted
        to this net's current shapes, computing the same function; what cannot be fitted is
        returned as it is, for the strict load to name. The default changes nothing."""
        return state

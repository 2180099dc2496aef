"""Training methods, one module each (its settings, training step, exported model's runtime,
dataset layouts, size rule and hooks): see :mod:`trainer.methods.base` for the contract. The
table of methods is :mod:`trainer.registry`; this package imports none of its modules."""

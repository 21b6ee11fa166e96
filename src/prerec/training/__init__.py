"""Pre-training, fine-tuning, run directories and checkpoints of the PreRec model.

- :mod:`prerec.training.config`: the typed :class:`TrainConfig` (paper defaults), presets, TOML, ``--set``;
- :mod:`prerec.training.data`: flat training arrays, domain-balanced draws, negatives, batches;
- :mod:`prerec.training.loop`: Adam + MAP priors, lr decay, early stopping, data parallelism;
- :mod:`prerec.training.pretrain`: :func:`pretrain` on source domains into a run directory;
- :mod:`prerec.training.run`: :class:`Run` and :func:`load_run`;
- :mod:`prerec.training.finetune`: incremental training / fine-tuning on a target.
"""

from prerec.training.config import TrainConfig, build_config

__all__ = ["TrainConfig", "build_config"]

"""Pre-training and fine-tuning of the PreRec model.

- :mod:`prerec.training.data`: flat training arrays, domain-balanced draws, negatives, batches;
- :mod:`prerec.training.loop`: Adam + MAP priors, lr decay, early stopping, the best epoch, data parallelism;
- :mod:`prerec.training.validation`: validation metrics from a scoring function;
- :mod:`prerec.training.pretrain`: :func:`pretrain` on source domains into a run directory;
- :mod:`prerec.training.finetune`: incremental training / fine-tuning on a target.

The configuration is :mod:`prerec.config`; runs and checkpoints are :mod:`prerec.run` and
:mod:`prerec.checkpoint`.
"""

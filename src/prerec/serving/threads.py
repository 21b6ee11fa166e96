"""One thread per call for every numerical library the service uses (see the function)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def one_thread_per_request() -> None:
    """Make every numerical library use one thread per call (BLAS, torch, FAISS searches).

    The service answers many small requests at once from a thread pool; nested thread pools in
    each of them only fight for the cores (measured here: a 10k-item matrix-vector product took
    20 ms with two OpenBLAS threads on a busy machine, 0.3 ms with one). ``prerec serve`` calls
    this after the indexes are built. BLAS threads are limited through ``threadpoolctl`` when it
    is installed (it comes with scikit-learn); otherwise set ``OPENBLAS_NUM_THREADS=1``.
    """
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:  # pragma: no cover - depends on the environment
        log.info("threadpoolctl not installed: BLAS threads left as they are (set OPENBLAS_NUM_THREADS=1)")
    import torch

    torch.set_num_threads(1)
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass

"""Memory reused across calls for large temporary arrays.

Shared by the bfloat16 wrapper (the float32 widenings and stand-ins of a
call) and ``xent.torch`` (gradients handed to autograd, bfloat16 widenings).
"""

import math
import sys
import threading
from typing import Any, List, Tuple

import numpy as np

__all__ = ["Buffers", "BUFFERS"]


class Buffers:
    """Memory for the large arrays a call writes (gradients, bfloat16 widened
    to float32), reused once nothing else holds it.

    A fresh array of hundreds of MiB costs more in page faults than the
    kernel takes to fill it (4096x32000 float32: ~90 ms of faults, 44 ms of
    computing), and a training step frees its gradient after the backward
    pass. An array lent out is held by whoever uses it (a tensor made from it
    with ``torch.from_numpy``, a call in progress); when they are gone, only
    this list refers to it and it is handed out again. At most ``KEEP`` arrays of
    at least ``MIN_BYTES`` each are kept; ``xent.torch.empty_cache()`` drops them.
    """

    MIN_BYTES = 1 << 20
    KEEP = 4

    def __init__(self) -> None:
        self._kept: List[np.ndarray] = []
        self._lock = threading.Lock()

    def empty(self, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        if math.prod(shape) * dtype.itemsize < self.MIN_BYTES:
            return np.empty(shape, dtype)
        with self._lock:
            for i in range(len(self._kept)):
                a = self._kept[i]
                # referenced by this list, ``a`` and getrefcount's argument only
                if a.shape == shape and a.dtype == dtype and sys.getrefcount(a) == 3:
                    self._kept.append(self._kept.pop(i))  # most recently used last
                    return a
            a = np.empty(shape, dtype)
            self._kept.append(a)
            if len(self._kept) > self.KEEP:
                self._kept.pop(0)
            return a

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


BUFFERS = Buffers()

"""Before NumPy loads OpenBLAS in the command's process (imported first by ``qcheck.cli``).

After each call, OpenBLAS's threads spin for 2**28 cycles (its ``OPENBLAS_THREAD_TIMEOUT``
default, about 0.1 s here) before they sleep. A comparison converts colours a block of pixels
at a time, each conversion a small matrix product, so the spare thread spun through every
comparison: ``perf`` put 2.5 % of a cold check's processor time in ``blas_thread_server``,
a core's share the workers' conversions wanted. 16 cycles (the least OpenBLAS takes) leaves it
asleep between calls. The thread count is unchanged, so every product (the SQNR's dot products
split across threads as before) is the same bit for bit. Workers inherit it. A value the user
set is kept.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

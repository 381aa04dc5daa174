"""The command's process has OpenBLAS's threads sleep between calls instead of spinning:
``OPENBLAS_THREAD_TIMEOUT`` is set before NumPy loads OpenBLAS, unless the user set it."""

from __future__ import annotations

import os
import subprocess
import sys

# Records the variable at the moment NumPy is first imported, then imports the command (its
# light front, then the body that loads NumPy, as ``qcheck.cli.run`` does).
_PROBE = """
import os, sys
seen = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and not seen:
            seen.append(os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
        return None
sys.meta_path.insert(0, Watch())
import qcheck.cli
import qcheck.cli.app
print(seen[0])
"""


def _timeout_at_numpy_import(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          timeout=120, check=True, env={**clean, **env})
    return done.stdout.strip()


def test_openblas_threads_sleep_from_the_start_and_a_users_setting_wins() -> None:
    assert _timeout_at_numpy_import() == "4"
    assert _timeout_at_numpy_import(OPENBLAS_THREAD_TIMEOUT="28") == "28"

"""A worker imports its libraries without the cycle collector, then freezes what they made:
the collector neither walks those objects during the import nor after it, and what the jobs
make later is still collected."""

from __future__ import annotations

import subprocess
import sys

# In a process of its own: a freeze is for the life of the process.
_PROBE = """
import gc, weakref
from qcheck.workers.entry import _modules_frozen
frozen_before = gc.get_freeze_count()
with _modules_frozen():
    during = gc.isenabled()
    import email.parser, xml.dom.minidom  # modules of their own, with cycles of their own
after = gc.isenabled()
frozen = gc.get_freeze_count() - frozen_before

class Node:
    pass

node = Node()
node.self = node  # a cycle a job might leave behind
alive = weakref.ref(node)
del node
gc.collect()
print(during, after, frozen > 1000, alive() is None)
"""


def test_imports_run_without_the_collector_and_stay_frozen_and_later_cycles_are_collected(
) -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["False", "True", "True", "True"], done.stdout

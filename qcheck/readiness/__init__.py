"""Release readiness beyond colour: the kernels the phone runs, latency, memory, size, delegate
and op coverage, and the I/O contract (``measure``); what the runtime worker measures of one
artifact (``profile``, ``coverage``) stays free of qcheck's pipeline."""

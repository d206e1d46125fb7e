"""The runtime every service and backend shares, importing nothing above it.

- :mod:`~pytest_commons.core.config`: the option and catalogue-entry types;
- :mod:`~pytest_commons.core.host`: free ports, the server user, ownership, cached init dirs;
- :mod:`~pytest_commons.core.childenv`: the environment every child process gets (``env=``);
- :mod:`~pytest_commons.core.run`: the run directory, instance records, stale runs, reuse;
- :mod:`~pytest_commons.core.registry`: find or start a service once per run (xdist-shared);
- :mod:`~pytest_commons.core.lock`, :mod:`~pytest_commons.core.cleanup`,
  :mod:`~pytest_commons.core.reaper`: file locks, stopping servers, the orphan reaper;
- :mod:`~pytest_commons.core.imports`, :mod:`~pytest_commons.core.java`: thread-safe driver
  imports, finding a Java runtime.

Services (:mod:`pytest_commons.services`) and backends (:mod:`pytest_commons.backends`) import
from here; nothing here imports from them at module level.
"""

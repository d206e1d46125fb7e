"""pytest-commons' pytest plugin (entry point ``commons`` → :mod:`pytest_commons.plugin.hooks`).

- :mod:`~pytest_commons.plugin.hooks`: every hook of the core plugin (options, configure,
  collection, the header and summary, the xdist hand-off, session end);
- :mod:`~pytest_commons.plugin.options`, :mod:`~pytest_commons.plugin.settings`: the option
  group (flag, ini key, env variable each) and the resolved settings;
- :mod:`~pytest_commons.plugin.markers`: ``@pytest.mark.<service>``, ``requires``, ``backends``;
- :mod:`~pytest_commons.plugin.timeout`: the per-test timeout and its report;
- :mod:`~pytest_commons.plugin.aio`: the loop bookkeeping the async fixtures share;
- :mod:`~pytest_commons.plugin.progress`, :mod:`~pytest_commons.plugin.state`: terminal
  notices, stash keys.

The fixtures are in the service packages (:mod:`pytest_commons.services`); the coverage gate is
a plugin of its own (:mod:`pytest_commons.coverage_gate`).
"""

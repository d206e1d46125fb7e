"""pytest-commons: pytest fixtures backed by real services.

PostgreSQL, MySQL/MariaDB, Redis, Kafka, AWS and MockServer, served from Docker containers,
local server processes or URLs your CI provides, behind one fixture contract.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

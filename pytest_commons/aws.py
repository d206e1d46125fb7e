"""The public home of :class:`Aws`, the object the ``aws`` fixture hands out (a stable path).

The code lives in :mod:`pytest_commons.services.aws.client`.
"""

from __future__ import annotations

from pytest_commons.services.aws.client import Aws, AwsWorker, TrackedResource, worker_account

__all__ = ["Aws", "AwsWorker", "TrackedResource", "worker_account"]

"""RabbitMQ fixtures: the session instance, this worker's virtual host, the per-test view."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_commons.plugin.state import get_registry, service_handle

if TYPE_CHECKING:
    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.plugin.aio import LoopResources
    from pytest_commons.services.rabbitmq.client import Rabbitmq, RabbitmqWorker
    from pytest_commons.services.rabbitmq.spec import RabbitmqInfo

__all__ = ["rabbitmq", "rabbitmq_service"]


@pytest.fixture(scope="session")
def rabbitmq_service(request: pytest.FixtureRequest) -> ServiceHandle[RabbitmqInfo]:
    """The run's RabbitMQ instance: a handle with ``.info`` (host, port, user, password,
    ``.url``, ``.management_url``), ``.backend``, ``.version`` and fault injection
    (``stop/start/restart/pause/resume``).

    Scope: session, one server shared by all xdist workers. Cost: local start ≈4-6 s (an
    Erlang node with the management plugin), begun in the background right after collection.
    """
    return service_handle(request, "rabbitmq")


@pytest.fixture(scope="session")
def _rabbitmq_worker(
    request: pytest.FixtureRequest, rabbitmq_service: ServiceHandle[RabbitmqInfo]
) -> Iterator[RabbitmqWorker]:
    from pytest_commons.services.rabbitmq.client import RabbitmqWorker

    prefix = get_registry(request.config).ctx.db_prefix
    worker = RabbitmqWorker(rabbitmq_service, prefix)
    if not rabbitmq_service.owned or rabbitmq_service.instance.reused:
        worker.collect_dead()  # a server other runs use too: a killed run's vhosts go
    worker.create(prefix)
    try:
        yield worker
    finally:
        worker.delete()


@pytest.fixture
def rabbitmq(
    _rabbitmq_worker: RabbitmqWorker, _commons_loop_resources: LoopResources
) -> Iterator[Rabbitmq]:
    """This test's view of RabbitMQ (:class:`~pytest_commons.services.rabbitmq.client.Rabbitmq`):
    ``.url`` (with this worker's virtual host), ``.connection()`` (pika), ``.aio_connect()``
    (aio-pika), ``.kombu_connection()``, ``.queue()``/``.exchange()`` named for the test,
    ``.publish()`` and ``.consume(queue, n, timeout)``.

    The worker's virtual host is emptied after the test (connections closed; queues,
    exchanges and bindings deleted), so every test starts with none of an earlier test's.
    Scope: function. Cost: ≈2-5 ms after the test (management API calls), plus ≈2 ms per
    queue or exchange the test declared.
    """
    from pytest_commons.services.rabbitmq.client import Rabbitmq

    view = Rabbitmq(_rabbitmq_worker, _commons_loop_resources)
    try:
        yield view
    finally:
        view.close()
        _rabbitmq_worker.empty()

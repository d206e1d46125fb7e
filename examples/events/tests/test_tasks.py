"""A kombu task queue against a real RabbitMQ: tasks run once acknowledged; a task that keeps
failing is retried, then parked in the failed queue with its error."""

from pytest_commons import Rabbitmq

from commons_events.tasks import TaskQueue


def test_tasks_run_and_a_failing_one_is_parked_after_its_attempts(rabbitmq: Rabbitmq) -> None:
    done: list[int] = []
    calls = {"flaky": 0}

    def charge(order: int) -> None:
        done.append(order)

    def flaky(order: int) -> None:
        calls["flaky"] += 1
        raise RuntimeError(f"card declined for order {order}")

    with rabbitmq.kombu_connection() as conn:
        tasks = TaskQueue(conn, attempts=3)
        for order in (1, 2, 3):
            tasks.enqueue("charge", order=order)
        tasks.enqueue("flaky", order=4)
        assert tasks.work({"charge": charge, "flaky": flaky}, limit=4) == 4
        failures = tasks.failures()
    assert sorted(done) == [1, 2, 3]
    assert calls["flaky"] == 3
    assert [f["kwargs"] for f in failures] == [{"order": 4}]
    assert "card declined for order 4" in failures[0]["error"]

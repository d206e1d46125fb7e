"""What the contract suite needs to know about each registered service: one entry per service.

``fixture`` is the per-test fixture whose isolation the contract checks; ``dirty`` and ``clean``
are the bodies of two functions written into the inner test file:

- ``dirty(obj)`` leaves something behind through ``obj`` (the fixture's value) and returns a
  token naming it;
- ``clean(obj, token)`` is true when what ``dirty`` left is gone in a later test.

``image`` is the locally built test image (``containers/build.sh``) the Docker variant runs.
A service registered in ``pytest_commons/services/__init__.py`` without an entry here fails
``test_every_registered_service_has_a_contract_entry``: the checklist in
``docs/architecture.md`` adds one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contract:
    fixture: str
    dirty: str
    clean: str
    image: str


CONTRACTS: dict[str, Contract] = {
    "postgres": Contract(
        fixture="postgres",
        dirty="""
    with obj.connect() as conn:
        conn.execute("CREATE TABLE contract_left (v text)")
        conn.execute("INSERT INTO contract_left VALUES ('x')")
    return "contract_left"
""",
        clean="""
    with obj.connect() as conn:
        return conn.execute("SELECT to_regclass(%s)", (token,)).fetchone()[0] is None
""",
        image="pytest-commons/postgres:15",
    ),
    "redis": Contract(
        fixture="redis",
        dirty="""
    obj.set("contract-left", "x")
    return "contract-left"
""",
        clean="""
    return obj.get(token) is None and obj.dbsize() == 0
""",
        image="pytest-commons/redis:7",
    ),
    "mysql": Contract(
        fixture="mysql",
        dirty="""
    conn = obj.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE contract_left (v text)")
        cur.execute("INSERT INTO contract_left VALUES ('x')")
    conn.commit()
    return "contract_left"
""",
        clean="""
    conn = obj.connect()
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES LIKE %s", (token,))
        return cur.fetchall() == ()
""",
        image="pytest-commons/mariadb:10.11",
    ),
    "kafka": Contract(
        fixture="kafka",
        dirty="""
    topic = obj.topic("contract")
    obj.produce(topic, [b"x"])
    return topic
""",
        clean="""
    return token not in obj.admin().list_topics(timeout=10).topics
""",
        image="pytest-commons/kafka:4.1.1",
    ),
    "aws": Contract(
        fixture="aws",
        dirty="""
    import uuid

    name = f"contract-{uuid.uuid4().hex[:12]}"
    obj.client("s3").create_bucket(Bucket=name)
    return name
""",
        clean="""
    names = [b["Name"] for b in obj.client("s3").list_buckets()["Buckets"]]
    return token not in names
""",
        image="pytest-commons/localstack:moto",
    ),
    "mockserver": Contract(
        fixture="mockserver",
        dirty="""
    from mockserver import HttpRequest, HttpResponse

    obj.when(HttpRequest(path="/contract-left")).respond(HttpResponse(status_code=204))
    return "/contract-left"
""",
        clean="""
    return obj.retrieve_active_expectations() == []
""",
        image="pytest-commons/mockserver:engine",
    ),
    "rabbitmq": Contract(
        fixture="rabbitmq",
        dirty="""
    queue = obj.queue("contract")
    obj.publish(queue, b"x")
    return queue
""",
        clean="""
    import pika

    channel = obj.connection().channel()
    try:
        channel.queue_declare(token, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc.reply_code == 404
    return False
""",
        image="pytest-commons/rabbitmq:3.10",
    ),
}

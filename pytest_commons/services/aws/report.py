"""What a failing test's report says about AWS (see :mod:`pytest_commons.plugin.report`)."""

from __future__ import annotations

from typing import Any


def describe(handle: Any, funcargs: dict[str, Any], kept: bool) -> list[str]:
    """The test's account and what is in it (buckets, queues, tables), or what it created."""
    view = funcargs.get("aws")
    if view is None:
        return []
    worker = view._worker
    account = worker.account_id
    if worker.strategy == "account-reset":  # the account holds this test's resources only
        made = [f"s3 {b['Name']}" for b in view.client("s3").list_buckets().get("Buckets", [])]
        made += [f"sqs {url}" for url in view.client("sqs").list_queues().get("QueueUrls", [])]
        made += [f"dynamodb {t}" for t in view.client("dynamodb").list_tables()["TableNames"]]
    else:
        made = [f"{res.service} {res.name}" for res in worker.tracked]
    if kept and worker.info.access_key_id == account:
        state = (
            f"kept (--keep-failed) in account {account}: reach it with "
            f"aws_access_key_id={account} (any secret) at {worker.info.endpoint_url}; the "
            "worker's next tests use a fresh account"
        )
    elif kept:
        state = "kept (--keep-failed): not deleted"
    else:
        state = "removed after the test (--keep-failed keeps them)"
    lines = [f"account {account} ({worker.strategy}); what the test made, {state}:"]
    lines += [f"  {item}" for item in made[:20]] or ["  (nothing)"]
    return lines

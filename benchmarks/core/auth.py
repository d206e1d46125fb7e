"""What password authentication adds to a PostgreSQL connect on the local backend.

    python benchmarks/core/auth.py [--connects 300] [--rounds 3]

Starts a local server the way the plugin does (run password, scram-sha-256 over TCP), then
adds login roles that differ only in how they authenticate and times ``psycopg.connect`` +
``close`` over TCP for each, interleaved round by round (medians; a shared machine's noise
hits every role alike):

- ``trust``: no password (what the local server allowed before issue 17),
- ``scram16``: the run password as the plugin stores it (SCRAM verifier, 16 PBKDF2 rounds),
- ``scram4096``: the same with PostgreSQL's default 4096 rounds,
- ``md5``: an md5-hashed password.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROLES = ("trust", "scram16", "scram4096", "md5")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connects", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import psycopg

    from pytest_commons.backends.local import LocalBackend
    from pytest_commons.core.cleanup import stop_instance
    from pytest_commons.core.run import RunContext
    from pytest_commons.plugin.settings import Settings
    from pytest_commons.services.postgres.spec import PostgresSpec, scram_verifier

    settings = Settings.from_env()
    ctx = RunContext.create()
    spec = PostgresSpec(settings)
    inst = LocalBackend(settings).start(spec, ctx)
    try:
        info = spec.info_from_dict(inst.info)
        hba = Path(inst.extra["datadir"]) / "pg_hba.conf"
        hba.write_text(
            "host all bench_trust 127.0.0.1/32 trust\n"
            "host all bench_md5 127.0.0.1/32 md5\n" + hba.read_text()
        )
        with spec.connect(info, autocommit=True) as admin:
            admin.execute("CREATE ROLE bench_trust LOGIN")
            admin.execute(f"CREATE ROLE bench_scram16 LOGIN PASSWORD '{scram_verifier('pw')}'")
            admin.execute(
                f"CREATE ROLE bench_scram4096 LOGIN PASSWORD '{scram_verifier('pw', 4096)}'"
            )
            admin.execute("SET password_encryption = 'md5'")
            admin.execute("CREATE ROLE bench_md5 LOGIN PASSWORD 'pw'")
            admin.execute("SELECT pg_reload_conf()")
        times: dict[str, list[float]] = {role: [] for role in ROLES}
        for _ in range(args.rounds):
            for role in ROLES:
                password = None if role == "trust" else "pw"
                for _ in range(args.connects):
                    started = time.perf_counter()
                    psycopg.connect(
                        host=info.host,
                        port=info.port,
                        user=f"bench_{role}",
                        password=password,
                        dbname="postgres",
                    ).close()
                    times[role].append(time.perf_counter() - started)
        base = statistics.median(times["trust"])
        print(f"{args.connects} connects x {args.rounds} rounds per role (median per connect)")
        for role in ROLES:
            median = statistics.median(times[role])
            print(f"  {role:<10} {median * 1000:6.2f} ms   (+{(median - base) * 1000:5.2f} ms)")
    finally:
        stop_instance(inst)
        ctx.destroy()


if __name__ == "__main__":
    main()

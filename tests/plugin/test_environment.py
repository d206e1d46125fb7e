"""Bad environments (issue 17, items 11 and 12): a RAM directory that is read-only or short of
space, an unwritable cache directory and a damaged cache each get a fallback or a rebuild, and
the header says what was done."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("clean_env", "outer_services_settled")

PG_TEST = """
def test_pg(postgres):
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE t (id int)")
"""


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs mounted for the test (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_ram_dir_short_of_space_or_read_only_is_passed_over(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tiny_tmpfs: Path
) -> None:
    clean_env.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(tiny_tmpfs))
    pytester.makepyfile(PG_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--postgres-backend=local")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"commons: run data in *pytest-commons-* ({tiny_tmpfs}: only 1 MB free (need 256 MB))"]
    )
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--postgres-backend=local")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"commons: run data in * ({tiny_tmpfs}: it is read-only)"])


def test_an_unwritable_home_falls_back_to_a_temporary_cache_and_says_so(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    # a file where the directory should be: unwritable even for root
    home = pytester.path / "home-is-a-file"
    home.write_text("")
    clean_env.setenv("HOME", str(home))
    clean_env.delenv("XDG_CACHE_HOME", raising=False)
    pytester.makepyfile(PG_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--postgres-backend=local")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"commons: cache dir {home}/.cache/pytest-commons (from $HOME={home}) is not "
            "writable (Not a directory): using */cache for now; set --commons-cache-dir*"
        ]
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--commons-cache-dir={home}/cache", "--co"
    )
    result.stdout.fnmatch_lines(
        [f"commons: cache dir {home}/cache (from --commons-cache-dir) is not writable*"]
    )


def test_a_damaged_cache_is_detected_and_rebuilt(pytester: pytest.Pytester, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    pytester.makepyfile(PG_TEST)
    args = ("-p", "no:cacheprovider", "--postgres-backend=local", f"--commons-cache-dir={cache}")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    (cluster,) = (cache / "postgres").glob("*[!k]")  # the cluster, not its .lock
    (cluster / "global" / "pg_control").unlink()  # a damaged cache: the server can't start
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    assert (cluster / "global" / "pg_control").is_file()

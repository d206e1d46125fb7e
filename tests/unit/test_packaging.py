"""What a user installs (issue 24): the wheel and the sdist, their metadata, and the extras."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import pytest_commons

ROOT = Path(__file__).resolve().parents[2]
# test-runner plugins an extra may install only on purpose: xdist is what [xdist] is for
# ([all] names the extras, pytest-commons itself)
RUNNER_PLUGIN = re.compile(r"^(pytest[-_](?!commons\b)[a-z0-9_-]+)", re.IGNORECASE)
EXTRAS_FOR_THE_PROJECT = {"dev", "examples"}  # not user features: the project's own tooling


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and sdist built from a copy of the tree (the build writes into its source)."""
    pytest.importorskip("build")
    work = tmp_path_factory.mktemp("pkg")
    src = work / "src"
    ignore = shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".tox", ".*_cache", ".coverage*"
    )
    shutil.copytree(ROOT, src, ignore=ignore)
    out = work / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_twine_check_passes(dists: tuple[Path, Path]) -> None:
    pytest.importorskip("twine")
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_wheel_holds_the_package_license_and_entry_points(dists: tuple[Path, Path]) -> None:
    wheel, _ = dists
    version = pytest_commons.__version__
    assert wheel.name == f"pytest_commons-{version}-py3-none-any.whl"
    info = f"pytest_commons-{version}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(f"{info}/METADATA").decode()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert {n.split("/")[0] for n in names} == {"pytest_commons", info}
    assert f"{info}/licenses/LICENSE" in names
    assert "pytest_commons/py.typed" in names
    assert f"Version: {version}" in metadata  # single source: pytest_commons.__version__
    assert "License-Expression: Apache-2.0" in metadata
    for classifier in (
        "Development Status :: ",
        "Operating System :: POSIX :: Linux",
        "Operating System :: MacOS",
        "Topic :: Software Development :: Testing",
    ):
        assert f"Classifier: {classifier}" in metadata
    assert "commons = pytest_commons.plugin.hooks" in entry_points
    assert "pytest_commons.coverage_gate = pytest_commons.coverage_gate" in entry_points
    assert "pytest-commons = pytest_commons.cli:main" in entry_points


def test_sdist_ships_what_the_readme_links_and_the_remedies_name(dists: tuple[Path, Path]) -> None:
    _, sdist = dists
    with tarfile.open(sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\]\(((?!https?:|#)[^)#]+)", readme))
    assert links, "the README links to its docs"
    for link in links:
        target = link.rstrip("/")
        assert any(n == target or n.startswith(target + "/") for n in names), (top, link)
    assert "LICENSE" in names
    assert "containers/build.sh" in names
    assert any(n.startswith("containers/") for n in names)


def test_no_extra_installs_a_test_runner_plugin_as_a_side_effect() -> None:
    from pytest_commons.coverage_gate import _load_toml

    extras = _load_toml(ROOT / "pyproject.toml")["project"]["optional-dependencies"]
    found = {
        extra: [m.group(1) for req in reqs if (m := RUNNER_PLUGIN.match(req))]
        for extra, reqs in extras.items()
        if extra not in EXTRAS_FOR_THE_PROJECT
    }
    assert found.pop("xdist") == ["pytest-xdist"]
    assert {extra: plugins for extra, plugins in found.items() if plugins} == {}
    assert not any("pytest-asyncio" in req for req in extras["sql"])

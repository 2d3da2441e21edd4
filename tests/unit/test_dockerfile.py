"""No container engine runs here, so the Dockerfile is checked by replaying it: its
COPY steps into a clean build directory, its RUN step as written (with the image paths
moved under a temporary root), then the entrypoint with the final stage's ENV. The
replay is slow (a pip install), so it runs once per module and every check uses it."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
IMAGE_DIR = "/opt/deskfleet"
SUBCOMMANDS = {"run", "render", "crds", "agent", "explain", "simulate", "portal"}


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [(m.group(1), m.group(2).strip()) for m in
            re.finditer(r"^(FROM|RUN|COPY|USER|ENTRYPOINT|CMD|ENV|ARG|WORKDIR)\s+(.*)$",
                        text, re.M)]


def stages() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The build stage's instructions and the final stage's."""
    steps = instructions()
    final = [i for i, (k, _) in enumerate(steps) if k == "FROM"][1]
    return steps[:final], steps[final:]


def test_final_stage_is_small_pinned_and_unprivileged() -> None:
    steps = instructions()
    arg = next(v for k, v in steps if k == "ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", arg)
    froms = [v for k, v in steps if k == "FROM"]
    assert len(froms) == 2 and "AS build" in froms[0]
    _, final = stages()
    assert not any(k == "RUN" for k, _ in final), "no build step in the final stage"
    assert ("USER", "10001:10001") in final
    assert ("ENTRYPOINT", '["deskfleet"]') in final and ("CMD", '["run"]') in final


def image_python(tmp_path: Path) -> Path:
    """A bin directory whose `python` is a plain CPython 3.11, as in the base image."""
    bindir = tmp_path / "image-bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    return bindir


@dataclass(frozen=True)
class Image:
    venv: Path  # the replayed /opt/deskfleet
    env: dict[str, str]  # the final stage's ENV, its paths moved under the replay's root
    entrypoint: list[str]

    def run(self, *argv: str, cwd: Path, timeout: float = 120,
            ) -> subprocess.CompletedProcess[str]:
        """A command as the image runs it: only its ENV, its PATH resolving the name."""
        return subprocess.run(list(argv), cwd=cwd, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def deskfleet(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.run(*self.entrypoint, *args, cwd=cwd)


def final_env(final: list[tuple[str, str]], venv: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for kind, value in final:
        if kind == "ENV":
            for pair in shlex.split(value):
                key, _, setting = pair.partition("=")
                env[key] = (setting.replace("$PATH", "/usr/bin:/bin")
                            .replace(IMAGE_DIR, str(venv)))
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    tmp_path = tmp_path_factory.mktemp("image")
    src, root = tmp_path / "src", tmp_path / "root"
    src.mkdir()
    build, final = stages()
    for kind, value in build:
        if kind == "COPY":
            *sources, dest = value.split()
            target = src / dest
            for source in sources:
                path = REPO / source
                if path.is_dir():
                    shutil.copytree(path, src / Path(source).name,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(path, target if dest != "./" else src)
        elif kind == "RUN":
            command = value.replace(IMAGE_DIR, str(root / IMAGE_DIR.lstrip("/")))
            subprocess.run(["bash", "-ec", command], cwd=src, check=True, timeout=600,
                           env={"PATH": f"{image_python(tmp_path)}:/usr/bin:/bin",
                                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    venv = root / IMAGE_DIR.lstrip("/")
    entrypoint = json.loads(next(v for k, v in final if k == "ENTRYPOINT"))
    return Image(venv, final_env(final, venv), entrypoint)


def test_pip_does_not_ship(image: Image) -> None:
    assert (image.venv / "bin" / "python").exists()
    assert not (image.venv / "bin" / "pip").exists(), "pip must not ship"


def test_the_entrypoint_lists_exactly_its_subcommands(image: Image, tmp_path: Path) -> None:
    # The final stage's PATH finds the entrypoint in the copied virtualenv.
    assert shutil.which(image.entrypoint[0], path=image.env["PATH"]) == str(
        image.venv / "bin" / image.entrypoint[0])
    done = image.deskfleet("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = re.search(r"\{([a-z,]+)\}", done.stdout)
    assert listed, done.stdout
    names = listed.group(1).split(",")
    assert sorted(names) == sorted(SUBCOMMANDS)


def test_portal_pages_and_crds_ship(image: Image, tmp_path: Path) -> None:
    # The portal's templates and stylesheet ship in the package (package data).
    page = image.run("python", "-c",
                     "from deskfleet.portal.pages import Chrome, landing_page; "
                     "print(landing_page(Chrome('Workspace'), []))", cwd=tmp_path)
    assert page.returncode == 0, page.stderr
    assert "<style>" in page.stdout and "--accent" in page.stdout
    crds = image.deskfleet("crds", cwd=tmp_path)
    assert crds.returncode == 0, crds.stderr
    assert "sessionhostpools.deskfleet.io" in crds.stdout


def test_the_image_has_no_matplotlib(image: Image, tmp_path: Path) -> None:
    """The image installs `.` without the `plot` extra, so the simulate checks below run
    without matplotlib, as the image does."""
    done = image.run("python", "-c", "import matplotlib", cwd=tmp_path)
    assert done.returncode != 0
    assert "ModuleNotFoundError: No module named 'matplotlib'" in done.stderr


# Small days (300 staff) that finish in a few seconds: one run (its page and table), and
# several seeds of one scenario (the summary page, a PNG per scenario).
@pytest.mark.parametrize("args", [
    ["--staff", "300"],
    ["--scenario", "teleconsultation", "--seeds", "1,2", "--staff", "300"],
], ids=["one-run", "several-seeds"])
def test_simulate_writes_its_tables_without_matplotlib(
        image: Image, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out"
    done = image.deskfleet("simulate", *args, "--out-dir", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    page = out / "simulation.md"
    text = page.read_text()
    assert text.strip() and "| deskfleet" in text, text
    # The table on stdout is the one on the page.
    assert done.stdout.strip() and done.stdout.strip() in text
    assert sorted(p.name for p in out.iterdir()) == ["simulation.md"], "no PNG drawn"
    assert "](simulation" not in text, "the page links no picture"
    # One line says why there is no PNG, and what to install.
    notes = [line for line in done.stderr.splitlines() if "matplotlib" in line]
    assert len(notes) == 1, done.stderr
    assert "matplotlib is not installed" in notes[0]
    assert "pip install 'deskfleet[plot]'" in notes[0]
    assert f"wrote {page}" in done.stderr.splitlines()

"""No container engine runs here, so the Dockerfile is checked by replaying it: its
COPY steps into a clean build directory, its RUN step as written (with the image paths
moved under a temporary root), then the entrypoint the final stage runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [(m.group(1), m.group(2).strip()) for m in
            re.finditer(r"^(FROM|RUN|COPY|USER|ENTRYPOINT|CMD|ENV|ARG|WORKDIR)\s+(.*)$",
                        text, re.M)]


def test_final_stage_is_small_pinned_and_unprivileged() -> None:
    steps = instructions()
    arg = next(v for k, v in steps if k == "ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", arg)
    froms = [v for k, v in steps if k == "FROM"]
    assert len(froms) == 2 and "AS build" in froms[0]
    final = steps[[i for i, (k, _) in enumerate(steps) if k == "FROM"][1]:]
    assert not any(k == "RUN" for k, _ in final), "no build step in the final stage"
    assert ("USER", "10001:10001") in final
    assert ("ENTRYPOINT", '["deskfleet"]') in final and ("CMD", '["run"]') in final


def image_python(tmp_path: Path) -> Path:
    """A bin directory whose `python` is a plain CPython 3.11, as in the base image."""
    bindir = tmp_path / "image-bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    return bindir


def test_build_steps_work_and_the_entrypoint_runs(tmp_path: Path) -> None:
    src, root = tmp_path / "src", tmp_path / "root"
    src.mkdir()
    build = instructions()[: [i for i, (k, _) in enumerate(instructions()) if k == "FROM"][1]]
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
            command = value.replace("/opt/deskfleet", str(root / "opt" / "deskfleet"))
            subprocess.run(["bash", "-ec", command], cwd=src, check=True, timeout=600,
                           env={"PATH": f"{image_python(tmp_path)}:/usr/bin:/bin",
                                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    venv = root / "opt" / "deskfleet"
    assert not (venv / "bin" / "pip").exists(), "pip must not ship"
    out = subprocess.run([str(venv / "bin" / "deskfleet"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    import re

    listed = re.search(r"\{([a-z,]+)\}", out)
    assert listed, out
    assert {"run", "render", "crds", "agent", "explain", "simulate", "portal"} <= set(
        listed.group(1).split(","))
    # The portal's templates and stylesheet ship in the package (package data).
    page = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "from deskfleet.portal.pages import Chrome, landing_page; "
                           "print(landing_page(Chrome('Workspace'), []))"],
                          capture_output=True, text=True, check=True).stdout
    assert "<style>" in page and "--accent" in page
    crds = subprocess.run([str(venv / "bin" / "deskfleet"), "crds"], capture_output=True,
                          text=True, check=True).stdout
    assert "sessionhostpools.deskfleet.io" in crds

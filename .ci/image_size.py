"""Estimate the size of the PAIN container image without a Docker engine.

The estimate is the python:3.11-slim-bookworm base plus Debian's tini package plus the virtual
environment that the Dockerfile builds in /opt/pain. The script creates that environment in a
throwaway folder under /tmp and installs CPU-only torch and torchvision. Then it deletes the torch
files that the Dockerfile deletes (its TORCH_UNUSED_FILES), installs the rest of setup.cfg's
install_requires the way the Dockerfile does, deletes its PACKAGE_UNUSED_FILES and uninstalls pip. The estimate sums the bytes of every installed
file. The script also checks what the Dockerfile relies on:

- every package named in install_requires is installed;
- no installed package requires a torch or torchvision that the CPU builds do not satisfy, so no
  later pip run replaces them with the CUDA builds from PyPI;
- no CUDA library (nvidia-* or triton distributions, libcuda*, libcublas*, libnvjpeg*) is installed;
- the Dockerfile's TORCH_VERSION and TORCHVISION_VERSION match the pins in setup.cfg.

Run it from the repository root with Python 3.11. It needs about 1.5 GB in /tmp, and took 45 s
on a 2-core machine with the torch wheels already on disk:

    python3.11 .ci/image_size.py

Where PyTorch's CPU wheel index cannot be reached, pass CPU wheels that are at hand. The
estimate then measures those wheels and names them in its output:

    python3.11 .ci/image_size.py --torch-wheel torch-X+cpu-...whl --torchvision-wheel torchvision-...whl

Exit status: 0 when every check passes, 1 when one fails, 2 when the packages cannot be installed.
"""

from __future__ import annotations

import argparse
import configparser
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
BASE_IMAGE = "python:3.11-slim-bookworm"
# Source: docker-library/repo-info, repos/python/local/3.11-slim-bookworm.md, which records
# "Virtual Size: ~ 130.01 Mb" (all layers on disk) for python:3.11.16-slim-bookworm, amd64,
# created 2026-09-01. A later rebuild of the tag differs by a few MB.
BASE_IMAGE_BYTES = 130_010_000
TARGET_BYTES = 1_300_000_000
CUDA_DISTRIBUTION = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")
CUDA_LIBRARY = re.compile(r"^lib(cuda|cudart|cublas|cudnn|cufft|curand|cusolver|cusparse|nccl|nvjpeg|nvrtc|nvJitLink)")

# Runs inside the throwaway environment, whose pip brings its own copy of `packaging`.
REQUIREMENT_CHECK = r"""
import json, sys
from importlib import metadata
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

targets = json.loads(sys.argv[1])
report = {"installed": {}, "requirements": []}
for dist in metadata.distributions():
    name = canonicalize_name(dist.metadata["Name"])
    report["installed"][name] = dist.version
    for line in dist.requires or []:
        requirement = Requirement(line)
        target = canonicalize_name(requirement.name)
        if target not in targets:
            continue
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        report["requirements"].append({
            "by": name,
            "requirement": str(requirement),
            "target": target,
            "satisfied": requirement.specifier.contains(targets[target], prereleases=True),
        })
print(json.dumps(report))
"""


def read_install_requires() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
    return [line.strip() for line in parser["options"]["install_requires"].splitlines() if line.strip()]


def requirement_name(line: str) -> str:
    return re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower().replace("_", "-")


def pinned_version(requirements: list[str], name: str) -> str:
    for line in requirements:
        if requirement_name(line) == name:
            match = re.fullmatch(rf"{re.escape(name)}\s*==\s*([\w.]+)", line, re.IGNORECASE)
            if match:
                return match.group(1)
            raise SystemExit(f"setup.cfg: {name} must be pinned with ==, got {line!r}")
    raise SystemExit(f"setup.cfg: install_requires has no {name} pin")


def dockerfile_arguments() -> dict[str, str]:
    """Return the Dockerfile's ARG defaults, without the quotes around a quoted one."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    pairs = re.findall(r'^ARG\s+(\w+)=("[^"]*"|\S+)', text, re.MULTILINE)
    return {name: value.strip('"') for name, value in pairs}


def remove_unused_files(folder: Path, patterns: str) -> int:
    """Delete the files that the Dockerfile deletes (its *_UNUSED_FILES) under a folder; return the bytes freed."""
    freed = 0
    for pattern in patterns.split():
        for path in folder.glob(pattern):
            if path.is_dir():
                freed += sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
                shutil.rmtree(path)
            else:
                freed += path.stat().st_size
                path.unlink()
    return freed


class InstallError(Exception):
    pass


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, text=True, **kwargs)


def install_torch(python: str, torch_version: str, torchvision_version: str, args) -> str:
    """Install CPU torch and torchvision and return a sentence that names their source."""
    if args.torch_wheel is None:
        result = run([
            python, "-m", "pip", "install", "--quiet", "--index-url", CPU_INDEX,
            f"torch=={torch_version}+cpu", f"torchvision=={torchvision_version}+cpu",
        ])
        if result.returncode == 0:
            return f"torch {torch_version}+cpu and torchvision {torchvision_version}+cpu from {CPU_INDEX}"
        raise InstallError(
            f"installing from {CPU_INDEX} failed (exit status {result.returncode})."
            " Rerun with --torch-wheel and --torchvision-wheel to measure CPU wheels at hand."
        )

    # The torch wheel brings its own small dependencies (sympy, networkx and so on). The
    # torchvision wheel goes in without its dependencies, because a torchvision build that pins a
    # newer torch would otherwise pull the CUDA torch from PyPI.
    result = run([python, "-m", "pip", "install", "--quiet", str(args.torch_wheel)])
    if result.returncode == 0:
        result = run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(args.torchvision_wheel)])
    if result.returncode != 0:
        raise InstallError(f"installing the given wheels failed (exit status {result.returncode})")
    return f"the wheels {args.torch_wheel.name} and {args.torchvision_wheel.name} (given on the command line)"


def installed_bytes(root: Path) -> tuple[int, dict[str, int]]:
    """Sum the sizes of the regular files under root, in total and by top entry of site-packages.

    A file with several hard links counts once.
    """
    seen: set[tuple[int, int]] = set()
    total = 0
    by_entry: dict[str, int] = defaultdict(int)
    site_packages = next(root.glob("lib/python3*/site-packages"))
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            stat = path.lstat()
            if not path.is_file() or path.is_symlink() or (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_size
            try:
                entry = path.relative_to(site_packages).parts[0]
            except ValueError:
                entry = "(outside site-packages: bin, pyvenv.cfg)"
            by_entry[re.sub(r"-[^-]+\.dist-info$", " metadata", entry)] += stat.st_size
    return total, by_entry


def tini_bytes() -> int | None:
    """Installed-Size of Debian's tini from apt-cache, or None where apt-cache has no record of it."""
    if shutil.which("apt-cache") is None:
        return None
    result = subprocess.run(["apt-cache", "show", "tini"], capture_output=True, text=True)
    match = re.search(r"^Installed-Size:\s*(\d+)", result.stdout, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-wheel", type=Path, help="CPU torch wheel to measure instead of the CPU index's")
    parser.add_argument("--torchvision-wheel", type=Path, help="torchvision wheel to measure with --torch-wheel")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway environment and print its path")
    args = parser.parse_args()
    if (args.torch_wheel is None) != (args.torchvision_wheel is None):
        parser.error("--torch-wheel and --torchvision-wheel go together")
    if sys.version_info[:2] != (3, 11):
        parser.error(f"run this with Python 3.11, like the image; this is {platform.python_version()}")

    requirements = read_install_requires()
    torch_version = pinned_version(requirements, "torch")
    torchvision_version = pinned_version(requirements, "torchvision")
    failures: list[str] = []

    docker_args = dockerfile_arguments()
    for argument, expected in (("TORCH_VERSION", torch_version), ("TORCHVISION_VERSION", torchvision_version)):
        if docker_args.get(argument) != expected:
            failures.append(f"Dockerfile: ARG {argument}={docker_args.get(argument)} but setup.cfg pins {expected}")

    workdir = Path(tempfile.mkdtemp(prefix="pain-image-size-"))
    venv = workdir / "venv"
    try:
        run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        try:
            torch_source = install_torch(python, torch_version, torchvision_version, args)
        except InstallError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        unused_patterns = docker_args.get("TORCH_UNUSED_FILES", "")
        if not unused_patterns:
            failures.append("Dockerfile: ARG TORCH_UNUSED_FILES not found")
        site_packages = next(venv.glob("lib/python3*/site-packages"))
        freed = remove_unused_files(site_packages / "torch", unused_patterns)
        # The checks run in workdir, because python -c also finds metadata in its working folder,
        # such as a pain.egg-info in the repository.
        installed = json.loads(run(
            [python, "-c", REQUIREMENT_CHECK, "{}"], check=True, capture_output=True, cwd=workdir
        ).stdout)["installed"]
        measured = {"torch": installed["torch"], "torchvision": installed["torchvision"]}

        # The rest of install_requires, under constraints that pin torch and torchvision to the
        # builds installed above, as in the Dockerfile. pip then fails rather than replace them.
        constraints = workdir / "constraints.txt"
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in measured.items()))
        rest = [line for line in requirements if requirement_name(line) not in measured]
        result = run([python, "-m", "pip", "install", "--quiet", "--constraint", str(constraints), *rest])
        package_patterns = docker_args.get("PACKAGE_UNUSED_FILES", "")
        if not package_patterns:
            failures.append("Dockerfile: ARG PACKAGE_UNUSED_FILES not found")
        freed_packages = remove_unused_files(site_packages, package_patterns) if result.returncode == 0 else 0
        if result.returncode == 0:
            result = run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(REPO_ROOT)])
        if result.returncode != 0:
            print(f"error: installing the dependencies failed (exit status {result.returncode})", file=sys.stderr)
            return 2

        # Requirements are checked against the versions the image installs, not the measured
        # stand-ins, because the image's own pip decides against those.
        targets = {"torch": f"{torch_version}+cpu", "torchvision": f"{torchvision_version}+cpu"}
        report = json.loads(run(
            [python, "-c", REQUIREMENT_CHECK, json.dumps(targets)], check=True, capture_output=True, cwd=workdir
        ).stdout)
        print("\nrequirements on torch and torchvision (checked against the image's CPU builds):")
        for item in sorted(report["requirements"], key=lambda item: item["by"]):
            verdict = "ok" if item["satisfied"] else "NOT SATISFIED"
            print(f"  {item['by']}: {item['requirement']} -> {targets[item['target']]}: {verdict}")
            if not item["satisfied"] and item["by"] not in targets:
                failures.append(f"{item['by']} requires {item['requirement']}, which {targets[item['target']]} does not satisfy")

        missing = [requirement_name(line) for line in requirements if requirement_name(line) not in report["installed"]]
        if missing:
            failures.append(f"not installed: {', '.join(missing)}")
        cuda_distributions = sorted(name for name in report["installed"] if CUDA_DISTRIBUTION.match(name))
        if cuda_distributions:
            failures.append(f"CUDA distributions installed: {', '.join(cuda_distributions)}")
        cuda_files = sorted(str(path.relative_to(venv)) for path in venv.rglob("*.so*") if CUDA_LIBRARY.match(path.name))

        # The image's last build step uninstalls pip, after the checks above that use it.
        venv_with_pip, _ = installed_bytes(venv)
        run([python, "-m", "pip", "uninstall", "--yes", "--quiet", "pip"], check=True)
        venv_total, by_entry = installed_bytes(venv)
        pip_bytes = venv_with_pip - venv_total
        tini = tini_bytes()
        image_total = BASE_IMAGE_BYTES + venv_total + (tini or 0)

        print(f"\ndate: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
        print(f"machine: {platform.machine()}, {platform.platform()}, Python {platform.python_version()}, pip {report['installed']['pip']}")
        print(f"torch and torchvision: {torch_source}; installed versions {measured['torch']} and {measured['torchvision']}")
        print("\nlargest entries of site-packages:")
        for entry, size in sorted(by_entry.items(), key=lambda item: -item[1])[:15]:
            print(f"  {megabytes(size):>11}  {entry}")
        print(f"\nremoved from torch as the Dockerfile does ({unused_patterns}): {megabytes(freed)}")
        print(f"removed from other packages as the Dockerfile does ({package_patterns}): {megabytes(freed_packages)}")
        print(f"pip, which the Dockerfile uninstalls at the end: {megabytes(pip_bytes)}")
        print(f"virtual environment ({len(report['installed'])} distributions): {megabytes(venv_total)}")
        print(f"base image {BASE_IMAGE} (docker-library/repo-info, 3.11.16, 2026-09-01): {megabytes(BASE_IMAGE_BYTES)}")
        print(f"tini (Debian package, Installed-Size): {megabytes(tini) if tini else 'unknown here, not counted'}")
        print(f"estimated image size: {megabytes(image_total)} (target: under {megabytes(TARGET_BYTES)})")
        if image_total >= TARGET_BYTES:
            failures.append(f"the estimate {megabytes(image_total)} is over the target {megabytes(TARGET_BYTES)}")
        if cuda_files:
            print("\nCUDA libraries among the installed files:")
            for path in cuda_files:
                print(f"  {path}")
            if args.torch_wheel is None:
                failures.append("CUDA libraries installed from the CPU index")
            else:
                print("  (from the given wheels; a run against the CPU index fails on such files)")
    finally:
        if args.keep:
            print(f"\nkept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

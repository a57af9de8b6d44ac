"""Fixtures that run each supervisor test against its own multiprocTCPBase actor system."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Thespian reads this when it creates the transport, so it must be set before the
# first ActorSystem. It keeps all traffic of these tests on the loopback interface.
os.environ["THESPIAN_BASE_IPADDR"] = "127.0.0.1"

# This folder has no __init__.py because as a package it would be named
# "supervisors" and hide the package under test. So put the repository root (for
# `supervisors`) and this folder (for the helper modules) on sys.path, whatever the
# import mode.
TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parents[1]
for _path in (str(TESTS_DIR), str(REPO_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from thespian.actors import ActorSystem  # noqa: E402

from supervision_harness import Harness, end_process_group, free_port, listening_pids  # noqa: E402


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    admin_port = free_port()
    system = ActorSystem(
        "multiprocTCPBase",
        capabilities={"Admin Port": admin_port},
        transientUnique=True,
    )
    test_harness = Harness(system, tmp_path)
    test_harness.admin_port = admin_port
    # The admin process runs detached from pytest, in a process group of its own that every actor
    # of this system joins. Ending that group at teardown ends actors that outlived shutdown(),
    # such as a supervisor whose children ran in a convention member that left first.
    admin_groups = {os.getpgid(pid) for pid in listening_pids(admin_port)} - {os.getpgid(0)}
    try:
        yield test_harness
    finally:
        system.shutdown()
        test_harness.kill_leftovers()
        for group in admin_groups:
            end_process_group(group)

"""RootWatcher replaces a dead root supervisor, and no actor process outlives shutdown."""

from __future__ import annotations

import threading

from supervision_harness import Harness, process_is_gone, wait_until

from supervisors import RootWatcher, Strategy, SupervisorFlags, supervisor_child_spec

FLAGS = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=3, max_seconds=5.0)


def make_watcher(harness: Harness) -> RootWatcher:
    specs = [harness.worker_spec("a"), harness.worker_spec("b")]
    return RootWatcher(harness.system, "root", FLAGS, specs, ask_timeout=1.0, start_timeout=10.0)


def test_root_watcher_keeps_live_root(harness: Harness) -> None:
    watcher = make_watcher(harness)
    root = watcher.start()

    assert watcher.is_root_alive()
    assert not watcher.check()
    assert watcher.root_address == root
    assert watcher.restart_count == 0


def test_root_watcher_replaces_killed_root(harness: Harness) -> None:
    watcher = make_watcher(harness)
    old_root = watcher.start()
    before = harness.identities(old_root, ["a", "b"])
    old_root_pid = before["a"].ppid

    harness.kill(old_root_pid)
    assert wait_until(lambda: process_is_gone(old_root_pid), "root process to exit")
    replaced = watcher.check()
    after = harness.identities(watcher.root_address, ["a", "b"])

    assert replaced
    assert watcher.restart_count == 1
    assert watcher.root_address != old_root
    assert after["a"].ppid != old_root_pid
    assert after["a"].pid != before["a"].pid
    assert after["b"].pid != before["b"].pid
    assert watcher.is_root_alive()
    # The orphaned children notice that their parent process is gone and exit.
    harness.wait_until_gone([before["a"].pid, before["b"].pid])


def test_root_watcher_thread_replaces_root(harness: Harness) -> None:
    watcher = make_watcher(harness)
    old_root = watcher.start()
    old_root_pid = harness.identities(old_root, ["a"])["a"].ppid
    stop = threading.Event()
    thread = threading.Thread(target=watcher.watch, args=(stop, 0.2), daemon=True)
    thread.start()
    try:
        harness.kill(old_root_pid)
        wait_until(lambda: watcher.restart_count == 1, "watch thread to start a new root")
    finally:
        stop.set()
        thread.join(timeout=5.0)

    assert not thread.is_alive()
    assert wait_until(lambda: watcher.root_address is not None, "new root address")
    assert harness.identities(watcher.root_address, ["a"])["a"].ppid != old_root_pid


def test_root_watcher_stop(harness: Harness) -> None:
    watcher = make_watcher(harness)
    root = watcher.start()
    pids = [identity.pid for identity in harness.identities(root, ["a", "b"]).values()]

    assert watcher.stop(timeout=10.0)
    assert watcher.root_address is None
    harness.wait_until_gone(pids)
    assert harness.events()[-2:] == ["stop b", "stop a"]


def test_no_processes_left_after_shutdown(harness: Harness) -> None:
    sub = supervisor_child_spec("sub", FLAGS, [harness.worker_spec("s1"), harness.worker_spec("s2")])
    root = harness.start_supervisor(FLAGS, [harness.worker_spec("a"), sub])
    report = harness.report(root)
    workers = harness.identities(report["sub"].address, ["s1", "s2"])
    worker_a = harness.identity(report["a"].address)
    pids = [worker_a.pid, worker_a.ppid, workers["s1"].pid, workers["s2"].pid, workers["s1"].ppid]
    assert len(set(pids)) == 5

    harness.system.shutdown()

    harness.wait_until_gone(pids, timeout=5.0)
    for pid in pids:
        assert process_is_gone(pid), pid

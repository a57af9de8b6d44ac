"""Predictors in a second actor system: a Thespian convention of two systems on loopback ports.

`pain serve` leads the convention; `pain worker` joins it and advertises the predictor-host
capability. The predictor pool supervisor then moves its predictors into the worker's system,
and restarts them beside the server when the worker stops. Predict requests flow the whole time
and every reply must name the right painting.
"""

from __future__ import annotations

from live_server import LiveServer, LiveWorker, Traffic, parent_pid, process_alive, wait_until


def status(server: LiveServer) -> dict:
    return server.status()


def placed(server: LiveServer, node: str, count: int) -> list[dict] | None:
    """The pool's predictors if `count` of them serve from actor system `node`, else None."""
    predictors = status(server)["pool"]["predictors"]
    serving = [p for p in predictors if p["node"] == node and p["state"] in ("idle", "busy")]
    return predictors if len(serving) == count else None


def test_predictors_move_to_worker_and_back(data_dir, photos):
    with LiveServer(data_dir, predictors=2) as server:
        home = f"127.0.0.1:{server.admin_port}"
        assert placed(server, home, 2), status(server)["pool"]
        pool_pid = [c["pid"] for c in status(server)["tree"]["children"] if c["name"] == "predictors"][0]

        with Traffic(server, photos, threads=2) as traffic:
            traffic.wait_for(2)
            with LiveWorker(server) as worker:
                # Joining moves the predictors one at a time, while requests keep flowing.
                moved = wait_until(lambda: placed(server, worker.node, 2), 180)
                # They are processes of the worker's actor system, not of the pool supervisor.
                worker_pids = {p["pid"] for p in moved} | {parent_pid(p["pid"]) for p in moved}
                assert pool_pid not in worker_pids
                assert None not in worker_pids

                served_before = sum(p["served"] for p in moved)
                traffic.wait_for(6)
                served_remotely = sum(p["served"] for p in status(server)["pool"]["predictors"]) - served_before
                assert served_remotely >= 6
                for title, body in photos.items():
                    code, reply = server.call("POST", "/api/predict", data=body)
                    assert code == 200
                    assert reply[0]["name"] == title

                # A stopped worker leaves the convention; its predictors restart beside the server,
                # and none of its processes outlives it.
                assert worker.stop(worker_pids) == []
            back = wait_until(lambda: placed(server, home, 2), 180)
            assert {parent_pid(p["pid"]) for p in back} == {pool_pid}
            traffic.wait_for(4)
        traffic.assert_all_correct()

        # Leaving the convention is not a crash: the pool did not escalate to the root.
        tree = status(server)["tree"]
        assert [c["restart_count"] for c in tree["children"] if c["name"] == "predictors"] == [0]


def test_worker_rejects_a_malformed_leader_address(tmp_path):
    import subprocess
    import sys

    from live_server import REPO_ROOT

    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "worker", "--leader", "no-port-here"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "actors.leader must be host:port" in result.stderr


def test_remote_predictors_exit_when_their_supervisor_dies(data_dir, photos):
    with LiveServer(data_dir, predictors=2) as server:
        with LiveWorker(server) as worker:
            moved = wait_until(lambda: placed(server, worker.node, 2), 180)
            old_pids = {p["pid"] for p in moved}
            worker_pids = old_pids | {parent_pid(pid) for pid in old_pids}

            # The root restarts the pool supervisor, whose new predictors start on the worker too.
            code, killed = server.call("POST", "/api/admin/kill", {"actor": "predictors", "mode": "sigkill"})
            assert code == 202
            def replaced():
                predictors = placed(server, worker.node, 2)
                return predictors if predictors and {p["pid"] for p in predictors}.isdisjoint(old_pids) else None

            fresh = wait_until(replaced, 180)

            # The old ones find their supervisor silent and exit instead of lingering as orphans.
            wait_until(lambda: not any(process_alive(pid) for pid in old_pids), 60)
            for title, body in photos.items():
                code, reply = server.call("POST", "/api/predict", data=body)
                assert code == 200
                assert reply[0]["name"] == title
            fresh_pids = {p["pid"] for p in fresh}
            assert worker.stop(fresh_pids | (worker_pids - old_pids)) == []

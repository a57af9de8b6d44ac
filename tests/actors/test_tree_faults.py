"""Fault injection against a real service: aiohttp on 127.0.0.1 and a multiprocTCPBase actor tree.

Actors are killed through the admin endpoint, exactly as an operator would, while predict
requests flow from other threads. Every test checks that replies name the right painting, not only their status.
"""

from __future__ import annotations

from live_server import LiveServer, Traffic, process_alive, wait_until
from workers.catalogue import Catalogue


def call(server: LiveServer, method: str, path: str, body=None, data: bytes | None = None):
    return server.call(method, path, body, data)


def status(server: LiveServer) -> dict:
    return server.status()


def serving(server: LiveServer, count: int, version: str | None = None) -> bool:
    predictors = status(server)["pool"]["predictors"]
    ready = [p for p in predictors if p["state"] in ("idle", "busy") and (version is None or p["version"] == version)]
    return len(ready) == count


def pids_of(server: LiveServer) -> dict[str, int | None]:
    """Each predictor the pool lists, with its process id."""
    return {p["id"]: p["pid"] for p in status(server)["pool"]["predictors"]}


def node(tree: dict, name: str) -> dict:
    if tree["name"] == name:
        return tree
    for child in tree.get("children", []):
        found = node(child, name)
        if found:
            return found
    return {}


def test_predictor_killed_while_requests_flow(data_dir, photos):
    with LiveServer(data_dir, predictors=2) as server:
        before = {p["id"]: p["pid"] for p in status(server)["pool"]["predictors"]}
        with Traffic(server, photos) as traffic:
            traffic.wait_for(3)
            code, killed = call(server, "POST", "/api/admin/kill", {"actor": "predictor-1", "mode": "sigkill"})
            assert code == 202
            assert killed["pid"] == before["predictor-1"]
            wait_until(lambda: not process_alive(before["predictor-1"]), 10)
            # The pool may still list the killed predictor for a moment, so wait for its successor.
            wait_until(lambda: serving(server, 2) and pids_of(server).get("predictor-1") not in (None, before["predictor-1"]), 60)
            traffic.wait_for(4)
        traffic.assert_all_correct()

        after = status(server)
        pids = {p["id"]: p["pid"] for p in after["pool"]["predictors"]}
        assert pids["predictor-1"] != before["predictor-1"]
        assert pids["predictor-2"] == before["predictor-2"]
        assert node(after["tree"], "predictor-1")["restart_count"] == 1


def test_predictor_that_raises_is_restarted(data_dir, photos):
    with LiveServer(data_dir, predictors=1) as server:
        before = status(server)["pool"]["predictors"][0]["pid"]
        code, _ = call(server, "POST", "/api/admin/kill", {"actor": "predictor-1", "mode": "raise"})
        assert code == 202
        # With one predictor, requests wait in the queue while it restarts.
        code, body = call(server, "POST", "/api/predict", data=photos["Title 2"])
        assert code == 200
        assert body[0]["name"] == "Title 2"
        wait_until(lambda: serving(server, 1) and pids_of(server).get("predictor-1") not in (None, before), 60)


def test_kills_beyond_restart_intensity_escalate_and_the_service_recovers(data_dir, photos):
    with LiveServer(data_dir, predictors=2, pool_max_restarts=1, pool_max_seconds=60.0) as server:
        pool_pid = node(status(server)["tree"], "predictors")["pid"]
        with Traffic(server, photos, threads=2) as traffic:
            traffic.wait_for(2)
            code, killed = call(server, "POST", "/api/admin/kill", {"actor": "predictor-1"})
            assert code == 202
            wait_until(lambda: node(status(server)["tree"], "predictor-1").get("pid") not in (None, killed["pid"]), 60)
            wait_until(lambda: serving(server, 2), 60)
            # The second restart within 60 s exceeds the intensity of 1: the pool supervisor gives
            # up, the root restarts the whole pool subtree.
            call(server, "POST", "/api/admin/kill", {"actor": "predictor-2"})
            wait_until(lambda: node(status(server)["tree"], "predictors").get("restart_count") == 1, 60)
            wait_until(lambda: serving(server, 2), 90)
            traffic.wait_for(3)
        traffic.assert_all_correct()
        assert not process_alive(pool_pid)
        assert node(status(server)["tree"], "predictors")["pid"] != pool_pid


def test_coordinator_trainer_and_root_recover_and_nothing_is_lost(data_dir, photos):
    with LiveServer(data_dir, predictors=1) as server:
        versions = sorted(p.name for p in (data_dir / "models").iterdir() if p.name.startswith("v"))
        paintings = sorted(Catalogue(data_dir).ids())
        old_pids = server.actor_pids()

        with Traffic(server, photos, threads=2) as traffic:
            traffic.wait_for(2)
            for actor in ("coordinator", "trainer"):
                old = node(status(server)["tree"], actor)["pid"]
                assert call(server, "POST", "/api/admin/kill", {"actor": actor})[0] == 202
                wait_until(lambda: node(status(server)["tree"], actor).get("pid") not in (None, old), 30)
                traffic.wait_for(2)

            assert call(server, "POST", "/api/admin/kill", {"actor": "pain"})[0] == 202
            wait_until(lambda: status(server)["root_restarts"] == 1, 60)
            wait_until(lambda: serving(server, 1), 90)
            traffic.wait_for(3)
        traffic.assert_all_correct()

        # Every process of the first tree is gone: the killed root's children followed it.
        wait_until(lambda: not any(process_alive(pid) for pid in old_pids - server.actor_pids()), 15)
        assert sorted(p.name for p in (data_dir / "models").iterdir() if p.name.startswith("v")) == versions
        assert sorted(Catalogue(data_dir).ids()) == paintings
        code, body = call(server, "GET", "/api/status")
        assert body["training"] == {"state": "idle"}


def test_stopping_the_service_leaves_no_actor_process(data_dir):
    server = LiveServer(data_dir, predictors=2)
    with server:
        pids = server.actor_pids()
        assert len(pids) == 6  # root, pool supervisor, two predictors, trainer, coordinator
    assert server.process.returncode == 0
    assert server.leftovers == []
    assert not any(process_alive(pid) for pid in pids)


def test_training_then_hot_reload_while_requests_flow(data_dir, photos):
    with LiveServer(data_dir, predictors=2) as server:
        with Traffic(server, photos) as traffic:
            traffic.wait_for(2)
            code, run = call(server, "POST", "/api/train", {})
            assert code == 202
            wait_until(lambda: status(server)["training"]["state"] == "succeeded", 120)
            assert status(server)["training"]["version"] == "v0002"
            wait_until(lambda: serving(server, 2, version="v0002"), 60)
            traffic.wait_for(3)
        traffic.assert_all_correct()
        assert status(server)["pool"]["target_version"] == "v0002"

        # An explicit reload back to the first version moves both predictors again.
        code, body = call(server, "POST", "/api/reload", {"version": "v0001"})
        assert code == 202
        assert body["version"] == "v0001"
        wait_until(lambda: serving(server, 2, version="v0001"), 60)

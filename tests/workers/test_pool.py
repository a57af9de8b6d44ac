"""The predictor pool's checkout, retry and reload bookkeeping, without actors."""

import pytest

from workers.pool import PendingRequest, PredictorPool, QueueFull, ReplicaState


def pool_with(*ids, version="v0001", queue_limit=4, max_attempts=3):
    pool = PredictorPool(queue_limit, max_attempts)
    pool.sync_members({replica_id: (f"address-{replica_id}", number) for number, replica_id in enumerate(ids)})
    for replica_id in ids:
        pool.joined(replica_id, version)
    pool.set_target(version)
    return pool


def test_requests_go_to_idle_predictors_and_wait_in_order():
    pool = pool_with("p1", "p2")
    for number in range(3):
        pool.submit(PendingRequest(f"r{number}", None, "web"))
    handed = pool.dispatch()
    assert sorted(replica.id for replica, _ in handed) == ["p1", "p2"]
    assert [request.request_id for _, request in handed] == ["r0", "r1"]
    assert [r.request_id for r in pool.queue] == ["r2"]

    replica, request = handed[0]
    assert pool.finish(replica.id, request.request_id) is request
    [(next_replica, next_request)] = pool.dispatch()
    assert (next_replica.id, next_request.request_id) == (replica.id, "r2")


def test_queue_limit():
    pool = pool_with("p1", queue_limit=1)
    pool.submit(PendingRequest("r0", None, "web"))
    with pytest.raises(QueueFull):
        pool.submit(PendingRequest("r1", None, "web"))


def test_holds_queued_and_running_requests():
    pool = pool_with("p1")
    pool.submit(PendingRequest("r0", None, "web"))
    pool.submit(PendingRequest("r1", None, "web"))
    [(replica, running)] = pool.dispatch()

    assert pool.holds(running.request_id)
    assert pool.holds("r1")  # waiting in the queue
    assert not pool.holds("r2")
    pool.finish(replica.id, running.request_id)
    assert not pool.holds("r0")


def test_request_of_a_dead_predictor_is_retried_first_on_another():
    pool = pool_with("p1", "p2")
    pool.submit(PendingRequest("r0", None, "web"))
    pool.submit(PendingRequest("r1", None, "web"))
    pool.submit(PendingRequest("r2", None, "web"))
    handed = dict((request.request_id, replica.id) for replica, request in pool.dispatch())

    # The supervisor restarted the predictor that had r0: same id, new pid.
    dead = handed["r0"]
    alive = "p2" if dead == "p1" else "p1"
    pool.sync_members({dead: ("new-address", 99), alive: (f"address-{alive}", pool.replicas[alive].pid)})
    assert [r.request_id for r in pool.queue] == ["r0", "r2"]
    assert pool.replicas[dead].state is ReplicaState.JOINING
    assert pool.retries == 1

    pool.finish(alive, "r1")
    [(replica, request)] = pool.dispatch()
    assert (replica.id, request.request_id, request.attempts) == (alive, "r0", 2)


def test_request_fails_after_max_attempts():
    pool = pool_with("p1", max_attempts=1)
    pool.submit(PendingRequest("r0", None, "web"))
    pool.dispatch()
    joined, exhausted = pool.sync_members({})
    assert joined == [] and [r.request_id for r in exhausted] == ["r0"]


def test_late_answer_from_an_old_incarnation_is_ignored():
    pool = pool_with("p1", "p2")
    pool.submit(PendingRequest("r0", None, "web"))
    [(replica, request)] = pool.dispatch()
    other = "p2" if replica.id == "p1" else "p1"
    assert pool.finish(other, "r0") is None
    assert "r0" in pool.in_flight


def test_expire_removes_old_requests():
    pool = pool_with("p1")
    pool.submit(PendingRequest("r0", None, "web", received_at=0.0))
    pool.submit(PendingRequest("r1", None, "web", received_at=0.0))
    pool.dispatch()
    expired = pool.expire(timeout=10.0, now=100.0)
    assert sorted(r.request_id for r in expired) == ["r0", "r1"]
    assert pool.replicas["p1"].state is ReplicaState.IDLE


def test_reload_moves_one_predictor_at_a_time_and_drains_it_first():
    pool = pool_with("p1", "p2", "p3")
    pool.submit(PendingRequest("r0", None, "web"))
    [(busy, _)] = pool.dispatch()
    pool.set_target("v0002")

    reloading = []
    for _ in range(3):
        while (replica := pool.next_reload()) is None:
            # The busy predictor was chosen and is draining: it finishes its request first.
            draining = [r for r in pool.replicas.values() if r.state is ReplicaState.DRAINING]
            assert len(draining) == 1 and draining[0].request_id is not None
            pool.finish(draining[0].id, draining[0].request_id)
        assert sum(r.state is ReplicaState.RELOADING for r in pool.replicas.values()) == 1
        # While one reloads, the others keep serving.
        assert pool._available() is not None or len(pool.in_flight) > 0
        assert pool.next_reload() is None
        pool.reloaded(replica.id, "v0002")
        reloading.append(replica.id)

    assert sorted(reloading) == ["p1", "p2", "p3"]
    assert {r.version for r in pool.replicas.values()} == {"v0002"}
    assert pool.next_reload() is None


def test_lone_predictor_keeps_serving_while_it_reloads():
    pool = pool_with("p1")
    pool.set_target("v0002")
    replica = pool.next_reload()
    assert replica.state is ReplicaState.RELOADING
    pool.submit(PendingRequest("r0", None, "web"))
    [(serving, _)] = pool.dispatch()
    assert serving.id == "p1"


def test_failed_reload_stops_the_wave_and_is_reported():
    pool = pool_with("p1", "p2")
    pool.set_target("v0002")
    first = pool.next_reload()
    pool.reload_failed(first.id, "v0002", "OSError: disk")
    assert pool.next_reload() is None
    assert pool.status()["reload_error"]["error"] == "OSError: disk"
    assert {r.version for r in pool.replicas.values()} == {"v0001"}

"""The front end's actor client against a real multiprocTCPBase actor that loses a message.

The client normally finds its addressee through `ActorService`, which needs the whole tree. Here a
small directory that always returns one actor replaces it, so that the test controls which
messages get a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import pytest
from thespian.actors import ActorExitRequest, ActorSystem, ActorTypeDispatcher

from live_server import free_port
from pain_actors.client import ActorClient
from pain_actors.system import Incarnation


@dataclass
class Ping:
    request_id: str


@dataclass
class Pong:
    request_id: str
    copies_seen: int


class Forgetful(ActorTypeDispatcher):
    """Actor that replies to a request only when its second copy arrives, as if the first was lost."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, int] = {}

    def receiveMsg_Ping(self, message: Ping, sender) -> None:
        self.seen[message.request_id] = self.seen.get(message.request_id, 0) + 1
        if self.seen[message.request_id] >= 2:
            self.send(sender, Pong(message.request_id, self.seen[message.request_id]))

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender) -> None:
        pass


class OneActorDirectory:
    def __init__(self, system: ActorSystem, incarnation: Incarnation) -> None:
        self.system = system
        self.incarnation = incarnation

    def incarnation_of(self, name: str) -> Incarnation:
        return self.incarnation

    def private_context(self):
        return self.system.private()


@pytest.fixture
def forgetful_client():
    system = ActorSystem("multiprocTCPBase", capabilities={"Admin Port": free_port()}, transientUnique=True)
    client = None
    try:
        address = system.createActor(Forgetful)
        client = ActorClient(OneActorDirectory(system, Incarnation(address, None)), threads=1)
        yield client
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        system.shutdown()


def test_client_resends_lost_request(forgetful_client):
    reply = asyncio.run(forgetful_client.ask("coordinator", Ping("lost-once"), timeout=20.0, resend_after=0.5))

    assert reply == Pong("lost-once", 2)


def test_client_without_resend_times_out(forgetful_client):
    reply = asyncio.run(forgetful_client.ask("coordinator", Ping("lost-for-good"), timeout=1.5))

    assert reply.status == 503
    assert reply.request_id == "lost-for-good"
    assert "did not answer in time" in reply.error

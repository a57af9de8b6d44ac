"""Base class of every PAIN actor: logging in its own process, and crash semantics like Erlang's."""

from __future__ import annotations

import os
from typing import Any

import structlog
from thespian.actors import ActorAddress

from pain_actors.logging_setup import configure_logging
from pain_actors.messages import Crash
from supervisors import SupervisedActor

log = structlog.get_logger(__name__)

# The process that starts an actor system names it here (host:admin port); its actors inherit it.
NODE_ENV = "PAIN_NODE"


def node_name() -> str:
    """Return the name of the actor system this process belongs to, as status pages show it."""
    return os.environ.get(NODE_ENV, "local")


class PainActor(SupervisedActor):
    """A supervised actor whose uncaught errors end it, so that its supervisor restarts it.

    Thespian would keep an actor running after its handler raised and return the message as
    poison. An OTP process dies instead, and a fresh one starts from a known state; this base
    class does the same. Subclasses implement `setup(start_args)`.
    """

    def init(self, start_args: dict[str, Any]) -> None:
        logging_settings = start_args.get("logging")
        if logging_settings is not None:
            configure_logging(logging_settings.format, logging_settings.level)
        structlog.contextvars.bind_contextvars(actor=self.child_id)
        self.setup(start_args)
        log.info("actor_started", actor_class=type(self).__name__)

    def setup(self, start_args: dict[str, Any]) -> None:
        """Build the actor's state from the child spec's start_args; raise to fail the start."""

    def receiveMessage(self, message: Any, sender: ActorAddress) -> Any:
        try:
            return super().receiveMessage(message, sender)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            log.exception("actor_crashed", message_type=type(message).__name__, reason=reason)
            self.stop(reason)
            return None

    def receiveMsg_Crash(self, message: Crash, sender: ActorAddress) -> None:
        raise RuntimeError(message.reason)

    def terminate(self) -> None:
        log.info("actor_stopping", actor_class=type(self).__name__)

"""An asyncio-friendly way for the front end to ask the actors something.

Thespian's `ask` blocks, and one endpoint must not be shared between threads. So each request
runs on a thread from a bounded pool, and each of those threads owns a private endpoint for its
whole life. While waiting, the thread also watches the coordinator's address: if the coordinator
was restarted, the request is sent again to the new one, since predict, status and reload are
safe to repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from pain_actors.messages import RequestFailed
from pain_actors.system import ActorService

log = structlog.get_logger(__name__)

LISTEN_SLICE = 0.25  # seconds between checks that the addressee is still the live incarnation


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


class ActorClient:
    def __init__(self, service: ActorService, threads: int) -> None:
        self.service = service
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="actor-client")
        self._local = threading.local()
        self._contexts: list[contextlib.ExitStack] = []
        self._contexts_lock = threading.Lock()

    async def ask(self, actor: str, message: Any, timeout: float) -> Any:
        """Send `message` (which has a request_id) to "coordinator" or "trainer"; return the reply.

        On timeout the reply is a RequestFailed with status 503.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._ask_blocking, actor, message, timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._contexts_lock:
            for stack in self._contexts:
                with contextlib.suppress(Exception):
                    stack.close()
            self._contexts.clear()

    def _context(self):
        context = getattr(self._local, "context", None)
        if context is None:
            stack = contextlib.ExitStack()
            context = stack.enter_context(self.service.private_context())
            self._local.context = context
            with self._contexts_lock:
                self._contexts.append(stack)
        return context

    def _ask_blocking(self, actor: str, message: Any, timeout: float) -> Any:
        context = self._context()
        request_id = message.request_id
        deadline = time.monotonic() + timeout
        sent_to = None
        sends = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("actor_request_timed_out", actor=actor, request_id=request_id, sends=sends)
                return RequestFailed(request_id, 503, f"the {actor} did not answer in time; try again shortly")

            address = self.service.address_of(actor)
            if address is None:
                time.sleep(min(LISTEN_SLICE, remaining))  # the actor is being restarted
                continue
            if address != sent_to:
                if sent_to is not None:
                    log.info("actor_request_resent", actor=actor, request_id=request_id, reason="actor restarted")
                context.tell(address, message)
                sent_to = address
                sends += 1

            reply = context.listen(min(LISTEN_SLICE, remaining))
            if reply is not None and getattr(reply, "request_id", None) == request_id:
                return reply
            # Anything else is a late reply to an earlier request of this thread: drop it.

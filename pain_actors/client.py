"""An asyncio-friendly way for the front end to ask the actors something.

Thespian's `ask` blocks, and one endpoint must not be shared between threads. So each request
runs on a thread from a bounded pool, and each of those threads owns a private endpoint for its
whole life. While waiting, the thread also watches the addressee's incarnation: if the coordinator
was restarted, the request is sent again to the new one, since predict, status and reload are
safe to repeat. A predict request is also sent again when no reply came for a while, in case the
request or its reply was lost on the way. The coordinator ignores a copy of a request it holds.
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
from pain_actors.system import ActorService, Incarnation

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

    async def ask(self, actor: str, message: Any, timeout: float, resend_after: float | None = None) -> Any:
        """Send `message` (which has a request_id) to "coordinator" or "trainer"; return the reply.

        With `resend_after`, the message is sent again each time that many seconds pass without a
        reply. Use it only for messages whose addressee ignores copies. On timeout the reply is a
        RequestFailed with status 503.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._ask_blocking, actor, message, timeout, resend_after)

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

    def _ask_blocking(self, actor: str, message: Any, timeout: float, resend_after: float | None) -> Any:
        context = self._context()
        request_id = message.request_id
        deadline = time.monotonic() + timeout
        sent_to: Incarnation | None = None
        sent_at = 0.0
        sends = 0
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                log.warning("actor_request_timed_out", actor=actor, request_id=request_id, sends=sends)
                return RequestFailed(request_id, 503, f"the {actor} did not answer in time; try again shortly")

            incarnation = self.service.incarnation_of(actor)
            if incarnation is None:
                time.sleep(min(LISTEN_SLICE, remaining))  # the actor is being restarted
                continue
            reason = None
            if sent_to is not None and not _same_life(incarnation, sent_to):
                reason = "actor restarted"
            elif sent_to is not None and resend_after is not None and now - sent_at >= resend_after:
                reason = "no reply yet"
            if sent_to is None or reason is not None:
                if reason is not None:
                    log.info("actor_request_resent", actor=actor, request_id=request_id, reason=reason, sends=sends)
                context.tell(incarnation.address, message)
                sent_to, sent_at = incarnation, time.monotonic()
                sends += 1

            reply = context.listen(min(LISTEN_SLICE, remaining))
            if reply is not None and getattr(reply, "request_id", None) == request_id:
                return reply
            # Anything else is a late reply to an earlier request of this thread: drop it.


def _same_life(current: Incarnation, earlier: Incarnation) -> bool:
    # A new process may get the port of the one it replaces, so the pid distinguishes the two. The
    # pid is unknown until the actor reports its start, which does not make it a new incarnation.
    if current.address != earlier.address:
        return False
    return current.pid is None or earlier.pid is None or current.pid == earlier.pid

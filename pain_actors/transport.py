"""Keep the actor system's listening sockets on the address it advertises.

Thespian's TCP transport binds every listening socket to all interfaces ('', port), whatever
address it advertises to other actors (THESPIAN_BASE_IPADDR, set from actors.host). Actor
messages are pickles, so anyone who can reach those ports can run code in the service. PAIN binds
them to the advertised address instead: 127.0.0.1 by default, or the machine's own address when
predictors run on other machines (docs/deployment.md).

NOTE: this replaces a constructor of thespian 4.0's transport. tests/web/test_api.py checks that no
socket of a running service listens on all interfaces, so a Thespian release that changes the
constructor fails that test instead of silently opening the ports again.
"""

from __future__ import annotations

import structlog
from thespian.system.transport import IPBase

log = structlog.get_logger(__name__)

_original_init = IPBase.IPActorAddress.__init__


def _init_bound_to_advertised_address(self, *args, **kwargs) -> None:
    _original_init(self, *args, **kwargs)
    # Thespian sets bindname to ('', port) for sockets that others connect to ("external").
    # sockname is the advertised address with the same port.
    if self.bindname != self.sockname and not self.bindname[0]:
        self.bindname = self.sockname


def bind_listeners_to_advertised_address() -> None:
    """Patch Thespian once per process, before its first actor system starts.

    Actor processes are forked from the process that starts the system, so they inherit the patch.
    """
    if IPBase.IPActorAddress.__init__ is not _init_bound_to_advertised_address:
        IPBase.IPActorAddress.__init__ = _init_bound_to_advertised_address
        log.debug("actor_transport_bound_to_advertised_address")

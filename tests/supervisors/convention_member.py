"""A second actor system for placement tests: joins the convention led by LEADER_PORT until SIGTERM.

    python convention_member.py LEADER_PORT OWN_PORT CAPABILITY

It offers CAPABILITY with a value unique to it, as `pain worker` does.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from thespian.actors import ActorSystem


def main(leader_port: int, own_port: int, capability: str) -> None:
    os.environ["THESPIAN_BASE_IPADDR"] = "127.0.0.1"
    capabilities = {"Admin Port": own_port, "Convention Address.IPv4": ("127.0.0.1", leader_port), capability: f"127.0.0.1:{own_port}"}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    system = ActorSystem("multiprocTCPBase", capabilities=capabilities, transientUnique=True)
    try:
        stop.wait()
    finally:
        system.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])

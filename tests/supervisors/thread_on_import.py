"""A module whose import starts a thread, like numpy's BLAS pool: used to test ChildSpec.preload."""

import threading

_idle = threading.Event()
threading.Thread(target=_idle.wait, name="started-on-import", daemon=True).start()

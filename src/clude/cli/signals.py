"""Stop signals as Ctrl-C: inside `stop_signals_as_interrupt()`, SIGTERM (and SIGHUP) raise
KeyboardInterrupt, so a run or a worker stops the way Ctrl-C stops it (saved, locks released)."""

from __future__ import annotations

import signal


class stop_signals_as_interrupt:
    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)):
        self.signals = signals

    def __enter__(self):
        def stop(signum, frame):
            raise KeyboardInterrupt()

        self.saved = {s: signal.signal(s, stop) for s in self.signals}
        return self

    def __exit__(self, *exc):
        for s, handler in self.saved.items():
            signal.signal(s, handler)
        return False

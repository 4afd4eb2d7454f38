"""Login throttling per account name, kept in memory.

Keyed by the name that was typed, whether or not such an account exists, so a lockout does
not reveal which accounts are real. Per process: run one worker, or put a shared store here.
"""

import threading
import time
from collections import OrderedDict

from backend.core.config import settings


class LoginThrottle:
    def __init__(self, *, max_failures: int, lockout_seconds: int, max_keys: int = 10_000):
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.max_keys = max_keys
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, []) if now - t < self.lockout_seconds]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it is not locked out."""
        with self._lock:
            now = time.monotonic()
            recent = self._recent(key, now)
            if len(recent) < self.max_failures:
                return 0
            return max(1, round(recent[-1] + self.lockout_seconds - now))

    def record_failure(self, key: str) -> None:
        with self._lock:
            self._failures.setdefault(key, []).append(time.monotonic())
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:  # bounded memory under a spraying attack
                self._failures.popitem(last=False)

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._failures.clear()
            else:
                self._failures.pop(key, None)


login_throttle = LoginThrottle(
    max_failures=settings.LOGIN_MAX_FAILURES, lockout_seconds=settings.LOGIN_LOCKOUT_SECONDS
)

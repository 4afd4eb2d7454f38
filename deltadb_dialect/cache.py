"""An LRU cache with time-to-live for decrypted entity documents.

The replica already answers SQL from memory; what it does not keep is each
row as a ready JSON document. Entity reads (the REST server's
``GET /entity/{db}?key=``) would rebuild that document on every request, so
hot documents are kept here, keyed by (table, keyed hash of the key), and
dropped precisely when a commit or another process's change touches them.
Size and TTL come from the URL (``cache_size``, ``cache_ttl``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class EntityCache:
    def __init__(self, size: int, ttl: float) -> None:
        self.size = max(0, size)
        self.ttl = ttl
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                if item is not None:
                    del self._items[key]
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: Hashable, value: Any) -> None:
        if not self.size:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def discard_table(self, table: str) -> None:
        with self._lock:
            for key in [k for k in self._items if isinstance(k, tuple) and k[0] == table]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

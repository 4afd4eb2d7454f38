"""The image's HEALTHCHECK: exit 0 when the service says it is ready, 1 otherwise.

HEALTHCHECK_URL overrides the address, e.g. `http://127.0.0.1:8080/health` for a container
running the entity server (`deltadb serve`).
"""

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("PORT", "8000")
    url = os.environ.get("HEALTHCHECK_URL") or f"http://127.0.0.1:{port}/api/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

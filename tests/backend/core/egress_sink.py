"""A loopback HTTP server that records every request it gets: what the guard must never reach.

It listens on 0.0.0.0 so that any spelling of a local address (127.0.0.1, 0.0.0.0, the
machine's own name) would land here. `redirect_to` makes it answer every request with a 302
to that URL instead (to test redirect handling).
"""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Sink:
    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    redirect_to: str | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_sink() -> Sink:
    sink: Sink

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            sink.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if sink.redirect_to:
                self.send_response(302)
                self.send_header("Location", sink.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = b'{"object": "list", "data": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _record

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)  # catches every local form
    sink = Sink(server=server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return sink

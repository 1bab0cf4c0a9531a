"""A threaded HTTP server running in the background, for the gateway and the sandboxes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Connections waiting to be accepted. The standard library's default, 5, makes a burst of a few
# dozen simultaneous requests lose some (reset, or never answered); API Gateway queues them. The
# kernel caps it at net.core.somaxconn (4096 on current Linux).
LISTEN_BACKLOG = 1024


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True  # a connection left open never keeps the process alive


class BackgroundServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str):
        self._handler = handler
        self._name = name
        self.server: ThreadingHTTPServer | None = None

    def start(self, host: str, port: int) -> str:
        """Serves on host:port (0: a free port), a thread per connection, until stop(); returns the base URL."""
        self.server = _Server((host, port), self._handler)
        threading.Thread(target=self.server.serve_forever, name=self._name, daemon=True).start()
        return f"http://{host}:{self.server.server_port}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

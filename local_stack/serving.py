"""A threaded HTTP server running in the background, for the gateway and the sandboxes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class BackgroundServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str):
        self._handler = handler
        self._name = name
        self.server: ThreadingHTTPServer | None = None

    def start(self, host: str, port: int) -> str:
        """Serves on host:port (0: a free port) until stop(); returns the base URL."""
        self.server = ThreadingHTTPServer((host, port), self._handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name=self._name, daemon=True).start()
        return f"http://{host}:{self.server.server_port}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

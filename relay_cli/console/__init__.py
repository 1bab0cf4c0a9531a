"""`relay console`: the relay's state in a browser, served from this machine.

A web app on 127.0.0.1 (never another interface) that reads the stack with your own AWS credentials,
like every `relay` command: nothing is exposed on the internet and the deployed stack gains no
route. It prints one line, `console: http://127.0.0.1:<port>/?token=<random>`: open it. Every
request needs that token (then its cookie); a replay needs the page's CSRF token too. Pages: the
overview (refreshing itself), a lead's timeline, the dead letters with their replay. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from relay_cli.console.pages import Console
from relay_cli.console.server import ConsoleServer
from relay_cli.output import non_negative_int
from relay_cli.stack import Stack

DEFAULT_PORT = 8090


def register(commands) -> None:
    console = commands.add_parser(
        "console",
        help="the relay's state in a browser: overview, lead timelines, dead letters and their replay",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    console.add_argument(
        "--port",
        type=non_negative_int,
        default=DEFAULT_PORT,
        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free one)",
    )
    console.add_argument(
        "--refresh",
        type=non_negative_int,
        default=30,
        help="seconds between the overview's refreshes (default 30; 0: never)",
    )
    console.set_defaults(run=run)


def serve(stack: Stack, port: int = DEFAULT_PORT, refresh: int = 30) -> ConsoleServer:
    """The console's server, bound and ready (not yet serving: call serve_forever)."""
    return ConsoleServer(Console(stack, csrf=secrets.token_urlsafe(32), refresh=refresh), port)


def run(stack: Stack, args: argparse.Namespace) -> int:
    try:
        server = serve(stack, args.port, args.refresh)
    except OSError as error:
        print(f"relay: error: cannot listen on 127.0.0.1:{args.port}: {error.strerror} (try --port)", file=sys.stderr)
        return 1
    print(f"console: {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0

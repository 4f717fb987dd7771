"""``registry-agent serve`` / ``python -m emulator``: every function in one process, at the broker's paths.

``add_arguments`` fills an argparse parser and ``serve(args)`` runs the server
(``emulator.server.serve``); ``shared/cli.py`` wires them in as a subcommand.
"""

from __future__ import annotations

import argparse

from emulator import server
from shared.settings import get_settings


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", help="address to bind (default: AGENT_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (default: SNYK_PORT, PORT, 8081)")
    parser.add_argument(
        "--threads", type=int, default=server.DEFAULT_THREADS, help="request threads (default: %(default)s)"
    )
    return parser


def serve(args: argparse.Namespace) -> int:
    server.serve(
        get_settings(),
        getattr(args, "host", None),
        getattr(args, "port", None),
        getattr(args, "threads", server.DEFAULT_THREADS),
    )
    return 0

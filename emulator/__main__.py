"""``python -m emulator``: serve every function through the router (see ``emulator.cli``)."""

from __future__ import annotations

import argparse
import logging

from emulator.cli import add_arguments, serve
from shared.errors import AgentError
from shared.logs import configure_logging


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Serve every agent function.")
    try:
        return serve(add_arguments(parser).parse_args())
    except AgentError as failure:  # a bad setting: one clear log line, not a traceback
        configure_logging()
        logging.getLogger("emulator").critical("%s: %s", failure.code, failure.message)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m emulator``: serve every function through the router (see ``emulator.cli``)."""

from __future__ import annotations

import argparse

from emulator.cli import add_arguments, serve


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Serve every agent function.")
    return serve(add_arguments(parser).parse_args())


if __name__ == "__main__":
    raise SystemExit(main())

"""Entry file for functions-framework and Cloud Functions, which load ``./main.py`` by path.

It only re-exports: the framework re-executes this file for every function it serves, and keeping
the code in the ``functions`` package means that package (and its shared state) loads only once.
It also sets up JSON log lines (``shared.logs``) when nothing else has: functions-framework alone
and Cloud Functions configure no logging of their own, while the emulator and test runners do.
"""

import os

from functions.callback import callback
from functions.describe import describe
from functions.listing import list_images
from functions.scan import scan
from functions.scan_event import scan_event
from shared.logs import configure_logging

# Read directly, not through the settings: a bad setting must surface as that setting's error on the
# first request, not as a failure to load the functions at all.
configure_logging(os.environ.get("LOG_LEVEL", "info"), only_if_unconfigured=True)

__all__ = ["callback", "describe", "list_images", "scan", "scan_event"]

"""Entry file for functions-framework and Cloud Functions, which load ``./main.py`` by path.

It only re-exports: the framework re-executes this file for every function it serves, and keeping
the code in the ``functions`` package means that package (and its shared state) loads only once.
"""

from functions.callback import callback
from functions.describe import describe
from functions.listing import list_images
from functions.scan import scan
from functions.scan_event import scan_event

__all__ = ["callback", "describe", "list_images", "scan", "scan_event"]

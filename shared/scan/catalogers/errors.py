"""The one error type catalogers raise for malformed input.

``extract()`` raises `CatalogerError` when a file it asked for cannot be read as what its path
promises (a truncated rpm database, a header whose offsets point outside it). The message names the
structure and the offset so that a scan warning is actionable; the engine is expected to turn it into
a warning for that file rather than fail the whole image.
"""

from __future__ import annotations


class CatalogerError(ValueError):
    """A wanted file is malformed; the message says which structure and why."""

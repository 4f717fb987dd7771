"""Debian control-file stanzas (``deb822``): the format of dpkg's status file and apt's extended_states.

A stanza is a run of ``Field: value`` lines ended by a blank line; a line starting with a space or a
tab continues the previous field (Debian Policy §5.1). Continuation lines are joined with ``\\n``
and keep their text without the leading whitespace, so multi-line fields stay readable while
single-line fields come out exactly as written.
"""

from __future__ import annotations


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """Parse every stanza in ``text``; field names keep their case, values are stripped."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_field: str | None = None
    for raw in text.splitlines():
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, last_field = {}, None
            continue
        if raw[0] in " \t":
            # A continuation line without a field before it is noise from a damaged file: skip it.
            if last_field is not None:
                current[last_field] += "\n" + raw.strip()
            continue
        if raw.startswith("#"):
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        last_field = name.strip()
        current[last_field] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas

"""What the relay takes for an email address (a lead's, a contact's sent to Loops).

`local@domain.tld`, one `@`, at most 320 characters (RFC 5321's 64 + 1 + 255). Letters of any
script are fine (`jürgen@bücher.de`), but no white space and no character that is invisible or
changes how text is shown: controls (NUL), format characters (zero-width characters, directional
overrides such as RTL), unpaired surrogates. Such an address cannot be typed by the person it names; in an email it is a
spoof (`ada@example.com` with U+202E shows another address) or a way past a suppression list.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 320
SHAPE = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
# Cc controls (NUL, DEL, …), Cf format characters (zero-width space/joiners, U+202E RTL override,
# U+FEFF), Cs unpaired surrogates. (White space is simply "not an email address".)
HIDDEN = {"Cc", "Cf", "Cs"}


def problem(text: str) -> str | None:
    """Why `text` is no email address (already stripped of surrounding white space), or None."""
    if len(text) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    hidden = next((c for c in text if unicodedata.category(c) in HIDDEN and not c.isspace()), None)
    if hidden is not None:
        return f"holds the invisible or control character U+{ord(hidden):04X}"
    if not SHAPE.fullmatch(text):
        return "not an email address"
    return None

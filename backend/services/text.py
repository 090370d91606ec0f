"""Text PostgreSQL can store: no NUL character and no lone UTF-16 surrogate (JSON allows
"\\ud800", and json.loads turns it into a lone surrogate that UTF-8 can't encode).

One rule for every way text comes in: the API's schemas and the pages' forms refuse such
text as bad input (4xx naming the field) instead of failing at the database (500); a
signed Stripe event, which must never be refused for it, is repaired instead.
"""
import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_is_storable(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_storable_check(value: str) -> str:
    """`value` unchanged, or ValueError saying what is wrong with it (a validator)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not text_is_storable(value):
        raise ValueError("must be valid Unicode (no lone surrogates)")
    return value


def text_storable_repaired(text: str) -> str:
    """`text` with NULs dropped and lone surrogates replaced by U+FFFD (cheap when ASCII)."""
    if text.isascii():
        return text.replace("\x00", "")
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))

"""What of a user's input an error may repeat: a short word or a plain name, never what could be a credential.

A value found where it does not belong is shown only when it cannot be a key: a pasted API key, token or
password must not reach a terminal or a CI log, not even a prefix of it. Anything else is described by its
kind and size.
"""

from __future__ import annotations

import re

SHOWN_WORD = re.compile(r"[A-Za-z][A-Za-z -]{0,15}")  # a value: 'ingres', 'many', 'true ish'
SHOWN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,39}")  # a key, a field, a name: 'namespcae', 'OPENAI_API_KEY'
# the shapes credentials take: provider prefixes, and long runs that mix letters and digits
CREDENTIAL = re.compile(r"(?i)^(sk|pk|rk)[-_]|^(ghp|gho|ghs|ghu|github_pat|glpat|xox[abpr]|AKIA|ASIA|AGE-SECRET-KEY|eyJ)"
                        r"|[A-Za-z]*\d+[A-Za-z]+\d|[A-Za-z]+\d+[A-Za-z]+\d*[A-Za-z]")


def looks_secret(text: str) -> bool:
    return bool(CREDENTIAL.search(text)) and (len(text) >= 12 or bool(CREDENTIAL.match(text)))


def may_show(text: str, *, name: bool = False) -> bool:
    """Whether ``text`` may appear in a message: a word (or, with ``name``, a plain identifier) that does not
    look like a credential."""
    pattern = SHOWN_NAME if name else SHOWN_WORD
    return bool(pattern.fullmatch(text)) and not looks_secret(text)


def shown(value: object) -> str:
    """The value quoted when it may be shown, else its kind and size."""
    if isinstance(value, str):
        return repr(value) if may_show(value) else f"a string of {len(value)} characters"
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def shown_key(key: object) -> str:
    """A mapping key in a field path: as written unless it could be a credential, else its size."""
    text = str(key)
    plain = len(text) <= 63 and text.isprintable() and not looks_secret(text)
    return text if plain else f"<a key of {len(text)} characters>"


def shown_url(url: str) -> str:
    """A URL without the user information a pasted URL may carry (https://user:token@host/...)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]*):[^/@\s]*@", r"\1\2:...@", url)


def shown_text(text: str) -> str:
    """Any text (a URL, a ref, a command's argument): quoted unless it could be a credential, else its size."""
    plain = len(text) <= 120 and text.isprintable() and not any(looks_secret(part) for part in re.split(r"[\s/:@;,]+", text))
    return repr(text) if plain else f"a value of {len(text)} characters"

"""Keep secrets out of output, logs and screens.

A variable is secret when its name contains TOKEN, PASSWORD, PASSWD, SECRET or KEY (public keys
excepted: SSH_PUBLIC_KEY is meant to be shared). Their values, and any private key block, are replaced
by ``MASK`` wherever text is shown or written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "********"
_SECRET_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY")
_MIN_SECRET_LEN = 4  # shorter values would blank out ordinary text
_BEGIN_PRIVATE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_END_PRIVATE = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")
_PRIVATE_MARK = "PRIVATE KEY-----"  # in every BEGIN line: a block without it has no key block start


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if "PUBLIC_KEY" in upper or upper.endswith("_PUB"):
        return False
    return any(word in upper for word in _SECRET_WORDS)


def mask_value(name: str, value: str) -> str:
    """The value as it may be shown: masked when the name is secret and the value non-empty."""
    return MASK if value and is_secret_name(name) else value


class Redactor:
    """Replaces secret values and private key blocks in text.

    ``redact_line`` is for streams read line by line: it remembers when it is inside a private key
    block so every line of the block is masked, not just the BEGIN line. Use one Redactor per stream.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {value for value in secrets if value and len(value) >= _MIN_SECRET_LEN}
        # Longest first so a secret containing another is masked whole.
        self._values = tuple(sorted(values, key=len, reverse=True))
        self._pattern = re.compile("|".join(re.escape(value) for value in self._values)) if values else None
        # A value holding a newline can never match within one line: redact_block must then go line by line.
        self._block_safe = not any("\n" in value for value in values)
        self._in_private_key = False

    @property
    def values(self) -> tuple[str, ...]:
        """The secret values masked (longest first)."""
        return self._values

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Redactor:
        return cls(value for name, value in env.items() if is_secret_name(name))

    def copy(self) -> Redactor:
        """A fresh redactor with the same secrets (for another stream)."""
        clone = Redactor()
        clone._values = self._values
        clone._pattern = self._pattern
        clone._block_safe = self._block_safe
        return clone

    def redact_line(self, line: str) -> str:
        if self._in_private_key:
            if _END_PRIVATE.search(line):
                self._in_private_key = False
            return MASK
        if _BEGIN_PRIVATE.search(line):
            if not _END_PRIVATE.search(line):
                self._in_private_key = True
            return MASK
        return self._pattern.sub(MASK, line) if self._pattern else line

    def redact_block(self, text: str) -> str:
        """Lines joined by ``"\\n"``, redacted exactly as ``redact_line`` would redact each of them
        (the private key state carries over), but in a few passes over the whole block: streams that
        arrive in chunks of thousands of lines pay per chunk, not per line. Falls back to line by
        line only for a block holding (or inside) a private key block."""
        if self._in_private_key or _PRIVATE_MARK in text or not self._block_safe:
            return "\n".join([self.redact_line(line) for line in text.split("\n")])
        # `in` per value is several times faster than searching the alternation pattern.
        if self._pattern is None or not any(value in text for value in self._values):
            return text
        return self._pattern.sub(MASK, text)  # no value holds a newline: no match crosses a line end

    def redact(self, text: str) -> str:
        """Redact a whole block of text (stateless across calls)."""
        redactor = self.copy()
        return "\n".join(redactor.redact_line(line) for line in text.split("\n"))

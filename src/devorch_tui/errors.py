"""The one base class for every error a user may see.

Services raise subclasses of :class:`DevorchError` carrying a plain-words ``message`` (what is wrong)
and a ``hint`` (how to fix it). The CLI prints them as ``error: ...`` / ``  fix: ...`` and exits
non-zero; the TUI shows them in a notification or an error panel. Nothing that reaches a user is a
traceback.
"""

from __future__ import annotations


class DevorchError(Exception):
    """An expected failure with a message for humans."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def describe(self) -> str:
        """Message and hint as one block of text (for notifications and CLI output)."""
        return f"{self.message}\nFix: {self.hint}" if self.hint else self.message


class ValidationError(DevorchError):
    """A value given by the user (a name, size, email, key...) is not acceptable."""

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}", hint=hint)
        self.field = field
        self.reason = message


class WorkspaceError(DevorchError):
    """The workspace folder is missing, unreadable or unwritable."""

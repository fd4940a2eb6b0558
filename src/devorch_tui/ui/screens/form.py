"""What every dialog form shares: Enter in a field or the submit button submits, Escape or Cancel closes.

A form sets ``SUBMIT_BUTTON`` (the id of its submit button) and implements ``submit``: check the
fields, then either dismiss with the result or show what is wrong and stay open. A form where Enter
in some field should do something else (move on to the next field) overrides ``field_submitted``.

Textual calls a message handler defined in *each* class of the MRO (``event.stop()`` does not
prevent that), so a subclass that defined its own ``on_input_submitted`` would run next to the one
here and submit (dismiss) twice: the second dismiss pops a screen that is not the form's, or crashes
with ``ScreenStackError``. Hence the hooks, a class check that refuses such handlers, and a guard
that ignores events once the form is no longer the screen shown.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button, Input

ResultT = TypeVar("ResultT")

_OWN_HANDLERS = ("on_input_submitted", "on_button_pressed", "_on_input_submitted", "_on_button_pressed")


class FormScreen(ModalScreen[ResultT | None]):
    SUBMIT_BUTTON: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _OWN_HANDLERS:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} defines {name}: override field_submitted() / submit() instead "
                    "(Textual would run both handlers and submit twice)"
                )

    def submit(self) -> None:
        raise NotImplementedError

    def field_submitted(self, field: Input) -> None:
        """Enter in ``field``: submits the form (override to move on to another field instead)."""
        self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.prevent_default()
        if self.is_active:  # already dismissed: a late Enter must not dismiss again
            self.field_submitted(event.input)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        event.prevent_default()
        if not self.is_active:
            return
        if event.button.id == self.SUBMIT_BUTTON:
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        if self.is_active:
            self.dismiss(None)

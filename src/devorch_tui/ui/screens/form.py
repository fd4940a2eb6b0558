"""What every dialog form shares: Enter in a field or the submit button submits, Escape or Cancel closes.

A form sets ``SUBMIT_BUTTON`` (the id of its submit button) and implements ``submit``: check the
fields, then either dismiss with the result or show what is wrong and stay open.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button, Input

ResultT = TypeVar("ResultT")


class FormScreen(ModalScreen[ResultT | None]):
    SUBMIT_BUTTON: ClassVar[str]

    def submit(self) -> None:
        raise NotImplementedError

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == self.SUBMIT_BUTTON:
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

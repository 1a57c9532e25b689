"""The help screen, generated from the app's bindings so it cannot drift from what the keys do."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static


def key_names(binding: Binding) -> str:
    return ", ".join(
        k.strip()
        .replace("question_mark", "?")
        .replace("less_than_sign", "<")
        .replace("greater_than_sign", ">")
        .replace("full_stop", ".")
        .replace("left_square_bracket", "[")
        .replace("right_square_bracket", "]")
        .replace("slash", "/")
        .replace("plus", "+")
        .replace("minus", "-")
        for k in binding.key.split(",")
    )


def help_content(bindings: list[Binding]) -> Content:
    parts: list[str | tuple[str, str]] = [("ovstop keys", "bold"), "  (escape or ? closes)\n\n"]
    for b in bindings:
        parts += [(f"{key_names(b):>16}", "bold $accent"), f"  {b.description}\n"]
    return Content.assemble(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1,q", "dismiss", "Close help", id="help.close"),
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.key_table = bindings

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_content(self.key_table), id="help-text")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)

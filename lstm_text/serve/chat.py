"""Chat for a model that only continues text: a conversation written as a plain-text transcript (the template),
the model continuing it after the assistant's marker, the reply cut where the model starts the next turn.

The template is a TOML file (``lstm-text serve --chat-template FILE``); every key is optional, and the defaults
are::

    system = "{content}\\n\\n"        # how each message is written; {content} is its text
    user = "User: {content}\\n"
    assistant = "Assistant: {content}\\n"
    generation = "Assistant:"        # the transcript's end: the model writes the reply from here
    stop = ["\\nUser:", "\\nAssistant:"]  # the next turn's markers: the reply ends before the first of them
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import LstmTextError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatTemplate:
    system: str = "{content}\n\n"
    user: str = "User: {content}\n"
    assistant: str = "Assistant: {content}\n"
    generation: str = "Assistant:"
    stop: list[str] = field(default_factory=lambda: ["\nUser:", "\nAssistant:"])

    def __post_init__(self) -> None:
        for role in ROLES:
            text = getattr(self, role)
            if not isinstance(text, str) or text.count("{content}") != 1:
                raise LstmTextError(f"the chat template's {role} must be a string holding {{{{content}}}} once")
        if not isinstance(self.generation, str):
            raise LstmTextError("the chat template's generation must be a string")
        if not isinstance(self.stop, list) or not all(isinstance(s, str) and s for s in self.stop):
            raise LstmTextError("the chat template's stop must be a list of non-empty strings")

    @classmethod
    def load(cls, path: str | Path) -> ChatTemplate:
        """The template in a TOML file; keys it leaves out keep their defaults."""
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # tomllib's origin, installed with the serve extra on Python 3.10
            import tomli as tomllib

        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise LstmTextError(f"cannot read the chat template {path}: {e}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LstmTextError(
                f"the chat template {path} has unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return cls(**data)

    def render(self, messages: list[tuple[str, str]]) -> str:
        """The transcript of (role, text) messages, ending where the assistant's reply starts."""
        # a plain replace, not str.format: a message's own braces are text
        return "".join(getattr(self, role).replace("{content}", text) for role, text in messages) + self.generation

"""The one exception type the library raises for problems a user can fix (bad input, bad options).

An error carries the parameter it concerns (``param``) and names parameters in its message as ``{name}``
placeholders, so that each front end says them in its own words: ``top_p`` in Python and over HTTP, ``--top-p``
on the command line. No front end parses a message. Anything else raised is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NAME = re.compile(r"\{\{|\}\}|\{([a-z][a-z0-9_]*)\}")  # {top_p}: a parameter's Python name; {{ and }}: a brace


class LstmTextError(Exception):
    """A user-facing error: the message names the problem and, where possible, the fix.

    Args:
        message: what went wrong; ``{name}`` stands for the parameter ``name`` (a keyword argument, config field
            or request field: ``"{top_p} must be in [1e-06, 1]"``); ``{{`` and ``}}`` are literal braces, as in
            ``str.format``.
        param: the parameter at fault, if one is (a front end may point at it: a 422's ``param``).
    """

    exit_code = 1

    def __init__(self, message: str, param: str | None = None):
        self.template, self.param = message, param
        super().__init__(self.render())

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message with each parameter said by ``name`` (default: its Python name)."""
        return render(self.template, name)


def render(template: str, name: Callable[[str], str] = str) -> str:
    """``template`` with each ``{name}`` placeholder said by ``name`` (default: the Python name itself)."""
    return _NAME.sub(lambda m: name(m[1]) if m[1] else m[0][0], template)


def flag(name: str) -> str:
    """How the command line says a parameter: ``top_p`` -> ``--top-p``."""
    return "--" + name.replace("_", "-")


def notice(template: str) -> dict:
    """A training callback's "notice" or "warning" info: the ``message`` in Python's words, and the ``template``
    for a front end that says parameters its own way (the CLI's ``--epochs``)."""
    return {"message": render(template), "template": template}

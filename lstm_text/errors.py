"""The one exception type the library raises for problems a user can fix (bad input, bad options).

The CLI turns it into a single line on stderr and a non-zero exit; anything else is a bug.
"""


class LstmTextError(Exception):
    """A user-facing error: the message names the problem and, where possible, the fix."""

    exit_code = 1

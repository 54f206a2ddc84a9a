"""The one base class for errors a user can fix: bad input, unknown names, refused statements.

Front-ends print these as plain messages (no traceback); anything else is a bug and is shown as one.
"""


class UserError(ValueError):
    """Something the user asked for is wrong; the message says what, where and what would be right."""

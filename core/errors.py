"""The one base class for errors a user can fix: bad input, unknown names, refused statements.

Front-ends print these as plain messages (no traceback); anything else is a bug and is shown as one.
"""


class UserError(ValueError):
    """Something the user asked for is wrong; the message says what, where and what would be right."""


def validate_input(model, data, what: str):
    """`model.model_validate(data)`, with the first problem as a `UserError` naming `what` and the field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise UserError(f"{what}: `{where}`: {msg}" if where else f"{what}: {msg}") from None

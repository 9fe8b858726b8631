"""A refused configuration said in the operator's words: the environment variable, the
rule, and the value given (unless it is a secret), one line each.

pydantic's own message names the settings field (`threads`) and links to its docs;
the operator set `DISPUTES_THREADS`.
"""

from __future__ import annotations

from pydantic import ValidationError

SECRET_WORDS = ("secret", "token", "key", "password")


def describe(exc: ValidationError, prefix: str = "DISPUTES_") -> str:
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = [str(part) for part in error["loc"]]
        if not loc:  # a rule across settings: its message names the variables
            lines.append(message)
            continue
        field = loc[0]
        variable = field if field.isupper() else prefix + field.upper()
        where = variable + "".join(f"[{part}]" for part in loc[1:])
        given = error.get("input")
        if any(word in field.lower() for word in SECRET_WORDS) or isinstance(given, dict):
            lines.append(f"{where}: {message}")
        else:
            lines.append(f"{where}={given!r}: {message}")
    return "\n".join(lines)

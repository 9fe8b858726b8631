"""`python -m services.client`: a small HTTP client for trying the API from a shell, so a
worked example needs neither jq nor GNU date.

    python -m services.client METHOD PATH [BODY] [--token T] [-H 'Name: value']... [--pick F]
    python -m services.client ago P20D [--day] # the UTC time 20 days ago, RFC 3339
                                               # (--day: that day's midnight, stable)

Sends BODY (JSON, checked before sending) to the gateway (`--api`, default `$DISPUTES_API`
or http://127.0.0.1:$DISPUTES_GATEWAY_PORT, port 8000 by default) and prints the answer's
JSON; `--pick id` prints only that field (`a.b` for a nested one), for `ID=$(...)`. The
status goes to standard error. Exit status 0 for a 2xx answer, 1 for any other (its
problem printed), 2 for bad arguments or an unreachable gateway.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import isodate

METHODS = ("GET", "POST", "PUT", "DELETE")


def default_api() -> str:
    port = os.environ.get("DISPUTES_GATEWAY_PORT", "8000")
    return os.environ.get("DISPUTES_API", f"http://127.0.0.1:{port}").rstrip("/")


def ago(duration: str, *, day: bool = False) -> str:
    """The UTC time `duration` (ISO 8601, e.g. P20D or PT6H) before now, RFC 3339; with
    `day`, the midnight that starts that day (the same all day long: a rerun of an
    example then sends the same facts)."""
    then: datetime = datetime.now(UTC) - isodate.parse_duration(duration)
    return then.strftime("%Y-%m-%dT00:00:00Z" if day else "%Y-%m-%dT%H:%M:%SZ")


def pick(document: Any, field: str) -> Any:
    for part in field.split("."):
        if not isinstance(document, dict) or part not in document:
            raise KeyError(field)
        document = document[part]
    return document


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.client",
        description="Call the disputes API and print the JSON answer "
        "(or: `python -m services.client ago P20D`).",
    )
    parser.add_argument("method", type=str.upper, choices=METHODS)
    parser.add_argument("path", help="e.g. /v1/disputes")
    parser.add_argument("body", nargs="?", help="a JSON document to send")
    parser.add_argument("--api", default=default_api(), help="the gateway's base URL")
    parser.add_argument("--token", help="the bearer token")
    parser.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value' (repeatable)"
    )
    parser.add_argument("--pick", help="print only this field of the answer (a.b nests)")
    return parser.parse_intermixed_args(argv)  # BODY may come after the options


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ago"]:
        if len(argv) not in (2, 3) or argv[2:] not in ([], ["--day"]):
            print("usage: python -m services.client ago DURATION [--day]", file=sys.stderr)
            return 2
        try:
            print(ago(argv[1], day=argv[2:] == ["--day"]))
        except (ValueError, isodate.ISO8601Error) as exc:
            print(f"not an ISO 8601 duration: {argv[1]} ({exc})", file=sys.stderr)
            return 2
        return 0
    args = parse_args(argv)
    headers = {"Accept": "application/json"}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            print(f"a header is 'Name: value', not {header!r}", file=sys.stderr)
            return 2
        headers[name.strip()] = value.strip()
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    data = None
    if args.body is not None:
        try:
            json.loads(args.body)
        except ValueError as exc:
            print(f"the body is not JSON: {exc}", file=sys.stderr)
            return 2
        data = args.body.encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        args.api + "/" + args.path.lstrip("/"), data=data, method=args.method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach {args.api}: {exc}", file=sys.stderr)
        return 2
    print(f"HTTP {status}", file=sys.stderr)
    ok = 200 <= status < 300
    try:
        document = json.loads(text) if text else None
    except ValueError:
        document = None
    out = sys.stdout if ok else sys.stderr
    if ok and args.pick:
        try:
            value = pick(document, args.pick)
        except KeyError:
            print(f"the answer has no field {args.pick!r}:\n{text}", file=sys.stderr)
            return 1
        print(value if isinstance(value, str) else json.dumps(value))
    elif document is not None:
        print(json.dumps(document, indent=2), file=out)
    elif text:
        print(text, file=out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Both tiers' OpenAPI documents, as canonical JSON, to compare across a refactoring.

    python -m tests.openapi_documents DIR          # writes DIR/gateway.json, DIR/service.json
    python -m tests.openapi_documents DIR --check  # exit 1 if either differs from DIR's

Run it with DIR on the commit before a change and `--check` after: the public contract
(the gateway's document) and the service's must come out byte for byte the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr


def documents() -> dict[str, dict[str, Any]]:
    """The gateway's and the dispute service's `app.openapi()`, built with test settings."""
    from services.dispute.api.app import create_app as create_service_app
    from services.dispute.settings import Settings
    from services.gateway.app import create_app as create_gateway_app
    from services.gateway.settings import GatewaySettings

    gateway_settings = GatewaySettings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        jwt_secret=SecretStr("openapi-documents-secret-0123456789-abc"),
        service_token=SecretStr("openapi-documents-service-token"),
        upstream_url="http://127.0.0.1:1",
    )
    return {
        "gateway": create_gateway_app(gateway_settings).openapi(),
        "service": create_service_app(Settings(_env_file=None)).openapi(),  # type: ignore[call-arg]
    }


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.openapi_documents")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    differ = []
    for name, document in documents().items():
        path = args.directory / f"{name}.json"
        text = canonical(document)
        if args.check:
            if path.read_text(encoding="utf-8") != text:
                differ.append(name)
                path.with_suffix(".new.json").write_text(text, encoding="utf-8")
        else:
            args.directory.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for name in differ:
        print(f"{name}: the OpenAPI document differs (see {name}.new.json)", file=sys.stderr)
    if args.check and not differ:
        print("both OpenAPI documents are identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

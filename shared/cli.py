"""``registry-agent``: the command line.

``list`` and ``describe`` talk to a registry directly (handy for checking credentials and network
paths from the agent's host); ``serve`` runs every function behind the emulator router.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from shared import errors
from shared.credentials import EcrCredentials, UserPassCredentials, parse_credentials, parse_credentials_json
from shared.registry import Platform, ResolvedImage, client_for, parse_image
from shared.settings import Settings, load_settings


def _credentials(
    args: argparse.Namespace, settings: Settings, image_registry: str | None = None
) -> UserPassCredentials | EcrCredentials:
    registry = args.registry or image_registry
    if registry:
        password = sys.stdin.read().rstrip("\r\n") if args.password_stdin else ""
        return parse_credentials_json(
            {
                "type": args.type,
                "username": args.username or "",
                "password": password,
                "registryBase": registry,
            }
        )
    if settings.cr_credentials is not None:
        return parse_credentials(settings.cr_credentials.get_secret_value())
    raise errors.CredentialsError(
        "no registry given: use --registry (or a registry in IMAGE) or set CR_CREDENTIALS"
    )


def image_summary(image: ResolvedImage) -> dict[str, Any]:
    config = image.config.get("config") or {}
    return {
        "repository": image.repository,
        "reference": image.reference,
        "digest": image.digest,
        "indexDigest": image.index_digest,
        "mediaType": image.media_type,
        "platform": str(image.platform) if image.platform else None,
        "platforms": [str(p) for p in image.platforms],
        "created": image.config.get("created"),
        "labels": config.get("Labels") or {},
        # Environment values can hold secrets: names only.
        "env": sorted({str(e).split("=", 1)[0] for e in config.get("Env") or []}),
        "entrypoint": config.get("Entrypoint"),
        "cmd": config.get("Cmd"),
        "layers": [
            {"digest": layer.digest, "size": layer.size, "mediaType": layer.media_type}
            for layer in image.layers
        ],
        "totalSize": image.total_size,
    }


def _print_describe(summary: dict[str, Any]) -> None:
    rows = [
        ("image", f"{summary['repository']}:{summary['reference']}"),
        ("digest", summary["digest"]),
        ("index digest", summary["indexDigest"] or "-"),
        ("media type", summary["mediaType"]),
        ("platform", summary["platform"] or "-"),
        ("platforms", ", ".join(summary["platforms"]) or "-"),
        ("created", summary["created"] or "-"),
        ("size", f"{summary['totalSize']} bytes in {len(summary['layers'])} layers"),
    ]
    for key, value in rows:
        print(f"{key:<13} {value}")
    print()
    print(f"{'LAYER':<72} {'SIZE':>12}  MEDIA TYPE")
    for layer in summary["layers"]:
        print(f"{layer['digest']:<72} {layer['size']:>12}  {layer['mediaType']}")


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(_credentials(args, settings), settings) as client:
        names = client.list_tags(args.repository) if args.repository else client.list_repositories()
    if args.json:
        print(json.dumps(names))
    else:
        print("\n".join(names))
    return 0


def _describe(args: argparse.Namespace, settings: Settings) -> int:
    ref = parse_image(args.image)
    platform = Platform.parse(args.platform) if args.platform else None
    with client_for(_credentials(args, settings, ref.registry), settings) as client:
        summary = image_summary(client.resolve(ref.repository, ref.reference, platform))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_describe(summary)
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from emulator.server import serve  # the server pulls in gunicorn and flask: load it only here

    serve(settings)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry-agent", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    registry_options = argparse.ArgumentParser(add_help=False)
    registry_options.add_argument("--type", default="generic", help="registry type (default: generic)")
    registry_options.add_argument("--registry", help="host[:port][/path]; default: CR_CREDENTIALS")
    registry_options.add_argument("--username", help="registry user name")
    registry_options.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    registry_options.add_argument("--json", action="store_true", help="print JSON instead of a table")

    listing = commands.add_parser(
        "list", parents=[registry_options], help="list repositories, or a repository's tags"
    )
    listing.add_argument("repository", nargs="?")
    listing.set_defaults(run=_list)
    describe = commands.add_parser("describe", parents=[registry_options], help="describe an image")
    describe.add_argument("image", help="[registry/]repository[:tag][@digest]")
    describe.add_argument("--platform", help="os/architecture[/variant] (default linux/amd64)")
    describe.set_defaults(run=_describe)
    serve = commands.add_parser("serve", help="serve every function (the emulator router)")
    serve.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.run(args, load_settings())
        return result
    except errors.AgentError as failure:
        print(f"registry-agent: {failure.code}: {failure.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``registry-agent``: the command line.

``list`` and ``describe`` talk to a registry directly (handy for checking credentials and network
paths from the agent's host); ``scan`` inventories an image from a registry, an OCI layout or an
archive; ``serve`` runs every function behind the emulator router.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from shared import errors
from shared.credentials import EcrCredentials, UserPassCredentials, parse_credentials, parse_credentials_json
from shared.registry import Platform, client_for, parse_image
from shared.settings import Settings, load_settings

if TYPE_CHECKING:
    from shared.api import ImageMetadata


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


def _print_describe(metadata: ImageMetadata) -> None:
    rows = [
        ("image", f"{metadata.repository}:{metadata.reference}"),
        ("digest", metadata.digest),
        ("index digest", metadata.index_digest or "-"),
        ("media type", metadata.media_type),
        ("platform", metadata.platform or "-"),
        ("platforms", ", ".join(metadata.platforms) or "-"),
        ("created", metadata.config.created or "-"),
        ("size", f"{metadata.total_size} bytes in {len(metadata.layers)} layers"),
    ]
    for key, value in rows:
        print(f"{key:<13} {value}")
    print()
    print(f"{'LAYER':<72} {'SIZE':>12}  MEDIA TYPE")
    for layer in metadata.layers:
        print(f"{layer.digest:<72} {layer.size:>12}  {layer.media_type}")


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(_credentials(args, settings), settings) as client:
        names = client.list_tags(args.repository) if args.repository else client.list_repositories()
    if args.json:
        print(json.dumps(names))
    else:
        print("\n".join(names))
    return 0


def _describe(args: argparse.Namespace, settings: Settings) -> int:
    # Loaded here: the API models cost a fifth of a second that `scan` and `list` need not pay.
    from shared.image_metadata import image_metadata

    ref = parse_image(args.image)
    platform = Platform.parse(args.platform) if args.platform else None
    with client_for(_credentials(args, settings, ref.registry), settings) as client:
        metadata = image_metadata(client.resolve(ref.repository, ref.reference, platform))
    if args.json:
        print(metadata.model_dump_json(by_alias=True, indent=2))
    else:
        _print_describe(metadata)
    return 0


def _scan(args: argparse.Namespace, settings: Settings) -> int:
    # Loaded here: the catalogers and output formats are only needed by this command.
    from shared.image import is_local
    from shared.progress import ByteProgress
    from shared.scan.pipeline import scan_image

    platform = Platform.parse(args.platform) if args.platform else None
    output_format = args.format or ("snyk" if args.json else "table")
    with ExitStack() as stack:
        client, host = None, None
        if not is_local(args.image):
            credentials = _credentials(args, settings, parse_image(args.image).registry)
            client = stack.enter_context(client_for(credentials, settings))
            host = credentials.host if isinstance(credentials, UserPassCredentials) else None
        outcome = scan_image(
            args.image,
            settings,
            client=client,
            registry_host=host,
            platform=platform,
            progress_for=ByteProgress.on_tty,
        )
    inventory = outcome.inventory
    rendered = outcome.render(output_format)
    print(rendered if isinstance(rendered, str) else json.dumps(rendered, indent=2))
    for warning in inventory.warnings:
        print(f"registry-agent: warning: {warning}", file=sys.stderr)
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
    scanning = commands.add_parser(
        "scan",
        parents=[registry_options],
        help="list the packages in an image",
        description="IMAGE is [registry/]repository[:tag][@digest], oci-dir:PATH[:NAME], "
        "oci-archive:PATH[:NAME] or docker-archive:PATH[:REPO:TAG]. --json without --format means snyk.",
    )
    scanning.add_argument(
        "image", help="registry image, oci-dir:PATH, oci-archive:PATH or docker-archive:PATH"
    )
    scanning.add_argument("--platform", help="os/architecture[/variant] (default linux/amd64)")
    scanning.add_argument(
        "--format", choices=("snyk", "cyclonedx", "spdx", "table"), help="output format (default: table)"
    )
    scanning.set_defaults(run=_scan)
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

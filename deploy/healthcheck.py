"""Container HEALTHCHECK: ``GET /healthcheck`` on the agent's own port; exit 0 when it answers 200.

Standard library only, because the runtime image ships neither curl nor wget. It reads the same
variables the agent does (``AGENT_HOST``, ``SNYK_PORT``/``PORT``, ``HTTPS_CERT``) so it probes
wherever the agent actually listens.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

# Addresses meaning "every interface": probe over loopback, which they include.
_ANY = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 - compared against, never bound


def probe_url(env: dict[str, str]) -> str:
    host = env.get("AGENT_HOST", "").strip()
    host = "127.0.0.1" if host in _ANY else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = env.get("SNYK_PORT") or env.get("PORT") or "8081"
    scheme = "https" if env.get("HTTPS_CERT") else "http"
    return f"{scheme}://{host}:{port}/healthcheck"


def main() -> int:
    url = probe_url(dict(os.environ))
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]  # never via a proxy
    if url.startswith("https:"):
        # Liveness, not identity: the certificate names the service, not the loopback address.
        handlers.append(urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))  # noqa: S323
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError) as error:
        print(f"healthcheck {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

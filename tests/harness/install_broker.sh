#!/bin/sh
# Installs the pinned real Snyk broker (npm snyk-broker, see package.json / package-lock.json) for the
# end-to-end harness in tests/harness/broker.py, then adds the files the npm tarball lacks.
#
# Why the copies: the published snyk-broker@5.22.14 tarball has no config.default.json, and the broker
# refuses to start without it ("config.default.json is missing"); it looks for it by walking up from its
# own package directory, so it must live in node_modules/snyk-broker/. The vendored copies come from the
# team's read-only material in ../shared/broker (beside the project root, also in CI's fresh clone).
#
# Usage: sh tests/harness/install_broker.sh [--force]   (from anywhere; paths are resolved from this file)
# Idempotent: `npm ci` is skipped while node_modules is newer than package.json and package-lock.json
# (scripts/setup runs this on every test run); --force reinstalls anyway.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH='' cd -- "$here/../.." && pwd)
shared="$root/../shared/broker"
pkg="$root/node_modules/snyk-broker"

for f in config.default.json container-registry-agent.accept.json; do
  if [ ! -f "$shared/$f" ]; then
    echo "install_broker: missing $shared/$f (expected the team's shared/ directory beside the project root)" >&2
    exit 1
  fi
done

cd "$root"
# npm writes node_modules/.package-lock.json last, so it is our "installed from this lock" stamp.
stamp=node_modules/.package-lock.json
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ -f "$pkg/dist/cli/index.js" ] \
  && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ]; then
  echo "install_broker: node_modules up to date with package-lock.json (use --force to reinstall)"
else
  # npm ci: exact versions and integrity hashes from package-lock.json.
  # --ignore-scripts: the broker needs no install scripts (only dtrace-provider, an optional native add-on
  # of bunyan, and protobufjs' version notice have any); skipping them keeps the install offline-safe.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi

cp -f "$shared/config.default.json" "$pkg/config.default.json"
mkdir -p "$pkg/defaultFilters"
cp -f "$shared/container-registry-agent.accept.json" "$pkg/defaultFilters/container-registry-agent.json"
echo "install_broker: snyk-broker installed in $pkg"

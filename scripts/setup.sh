#!/bin/bash
# Install what pyrunc needs on a fresh Debian 12 machine (as root) and build .venv from
# pyproject.toml. Idempotent: a second run only re-installs the package.
# usage: scripts/setup.sh [EXTRA_PACKAGE...]   (scripts/test.sh adds what only the tests need)
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(python3 python3-venv python3-dev gcc libc6-dev busybox-static jq iproute2 util-linux
	procps runc libseccomp2 "$@")
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check '.[test]'
# setuptools only builds the package (pip does that in an isolated environment); left in the
# venv, its distutils-precedence.pth imports a module at every interpreter start: ~0.5 ms of
# every pyrunc command
if compgen -G ".venv/lib/python3*/site-packages/distutils-precedence.pth" >/dev/null; then
	.venv/bin/pip uninstall -y -q --disable-pip-version-check setuptools
fi

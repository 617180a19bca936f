#!/bin/bash
# podman 4.3 (--runtime PATH) and docker 20.10 (a private dockerd, --add-runtime NAME=PATH)
# driving runc, then pyrunc, through the same scenarios, each run in private mount/net/PID
# namespaces with private state (conformance/harness/clients.sh). Writes
# conformance/results/clients-{runc,pyrunc}.txt ("CLIENT SCENARIO PASS|FAIL|SKIP detail [s]"
# lines); for each failing scenario, the client calls and the config.json/process.json the
# client gave the runtime go to $CLIENTS_FAILURES/<runtime>/<client>-<scenario>/
# (default /tmp/clients-failures).
# usage: conformance/run-clients.sh [clients.sh options]   (as root; env PYRUNC as elsewhere)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
[ -n "${PYRUNC:-}" ] || [ -x .venv/bin/pyrunc ] || ./scripts/setup.sh
pyrunc=${PYRUNC:-$PWD/.venv/bin/pyrunc}
failures=${CLIENTS_FAILURES:-/tmp/clients-failures}

# Debian's packages; services must not start on install (dockerd would take the host's
# /var/lib/docker, /run/docker.sock and firewall): a policy-rc.d that says no, for the install only
pkgs=(podman conmon crun uidmap catatonit fuse-overlayfs netavark aardvark-dns docker.io tini
      skopeo umoci busybox-static jq runc gcc gcc-multilib libc6-dev iproute2 util-linux bsdutils)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

mkdir -p "$here/results"
rm -rf "$failures/runc" "$failures/pyrunc"
start=$SECONDS
"$here/harness/clients.sh" --failures "$failures/runc" "$@" runc \
    >"$here/results/clients-runc.txt" 2>&1 || true
"$here/harness/clients.sh" --failures "$failures/pyrunc" "$@" "$pyrunc" \
    >"$here/results/clients-pyrunc.txt" 2>&1 || true
tail -n1 "$here/results/clients-runc.txt" "$here/results/clients-pyrunc.txt"
echo "clients: $((SECONDS - start))s; failures (if any) in $failures/{runc,pyrunc}/"

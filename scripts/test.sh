#!/bin/bash
# The test suite: unit tests and real-container integration tests (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
# libseccomp-dev: seccomp.h, to check the binding's constants against the C library's own;
# containerd: the shim's tests drive a private containerd 1.6 (conformance/harness/containerd.sh);
# containernetworking-plugins, iptables: the CRI tests' pod network (tests/integration/cri/env.py)
# and pyctr's networks (in network namespaces the tests make)
# docker-registry, apache2-utils (htpasswd): a TLS+auth registry on loopback for pyctr;
# skopeo, podman, umoci: the tools pyctr is checked against
# uidmap: newuidmap/newgidmap, for the rootless tests' subordinate ranges (and rootless podman)
./scripts/setup.sh libseccomp-dev containerd containernetworking-plugins iptables docker-registry \
	apache2-utils skopeo podman umoci uidmap
export PYRUNC="$PWD/.venv/bin/pyrunc"
.venv/bin/ruff check pyrunc pyctr oci_schema shim_v2 tests bench conformance
# the installed package (with its compiled syscall glue) is what gets tested, not ./pyrunc
exec .venv/bin/pytest -q -p no:cacheprovider tests "$@"

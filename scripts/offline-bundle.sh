#!/usr/bin/env bash
# Makes the bundle that builds dienbao on a machine without network: every
# module the build and the tests need, and the Go toolchain go.mod asks for,
# as a module proxy folder (GOPROXY=file://...). See README, "Offline build".
#
#   scripts/offline-bundle.sh OUT.tar.gz
set -euo pipefail
out=${1:?usage: scripts/offline-bundle.sh OUT.tar.gz}
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3
toolchain=golang.org/toolchain@v0.0.1-${GOTOOLCHAIN}.$(go env GOOS)-$(go env GOARCH)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A module cache of our own, filled from the proxy: what it holds is all
# the build machine will have.
GOMODCACHE="$work/mod" go mod download
GOMODCACHE="$work/mod" go mod download "$toolchain"
tar -C "$work/mod" -czf "$out" cache/download
echo "bundle: $out ($(du -h "$out" | cut -f1)), with $toolchain"
sha256sum "$out"

#!/bin/sh
# Install what the benchmark needs on Debian 12: the build tools and the
# peers it compares stillmap with.  Then `make bench` builds sm_bench
# with every peer found and runs the whole suite.
#
#   tools/install-peers.sh          (as root, or with sudo available)
set -eu
PACKAGES="build-essential cmake pkg-config python3 libxxhash-dev
          libabsl-dev libtbb-dev libcuckoo-dev liburcu-dev libck-dev
          libglib2.0-dev"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
# shellcheck disable=SC2086  # the package list is meant to split
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
echo "peers installed; now: make bench"

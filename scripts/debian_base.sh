#!/usr/bin/env bash
# Makes the root filesystem of the component image's base from Debian packages, in ROOT (root only):
# debootstrap bookworm, Python 3.11 with its headers and a C++ compiler (the lock's one source package,
# pyfarmhash, is compiled at install), then libc6 and libstdc++6 from trixie, as scripts/setup.sh does on a
# host (ml-metadata and TFDV 1.21 need glibc >= 2.39), and this host's local CA certificates.
#
#   scripts/debian_base.sh ROOT [MIRROR]
#
# scripts/build_image.sh imports ROOT as the image `imdb-bert-tfx-base:<hash of this file>`.
set -euo pipefail
ROOT=$1
MIRROR=${2:-http://deb.debian.org/debian}

say() { printf '\033[1m[debian_base]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[debian_base] error:\033[0m %s\n' "$*" >&2; exit 1; }

command -v debootstrap >/dev/null || die "debootstrap is not installed (Debian: apt-get install debootstrap)."
[ "$(id -u)" = 0 ] || die "debootstrap needs root."
say "debootstrap bookworm from $MIRROR into $ROOT"
debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOT" "$MIRROR" >&2 \
  || die "debootstrap failed; check access to $MIRROR."
say "Installing Python 3.11 (bookworm), then libc6 and libstdc++6 from trixie"
cat > "$ROOT/etc/apt/sources.list.d/trixie.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > "$ROOT/etc/apt/preferences.d/trixie"
# debootstrap resolves dependencies only roughly (python3.11-venv's are missed); apt resolves them.
chroot "$ROOT" sh -ec 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq;
  apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv python3.11-dev g++ >/dev/null;
  apt-get install -y -qq -t trixie libc6 libstdc++6 >/dev/null; apt-get clean; rm -rf /var/lib/apt/lists/*' >&2 \
  || die "installing Python 3.11 and libc6/libstdc++6 from trixie failed."
# Containers trust what this host trusts (its local CAs: e.g. a TLS-inspecting proxy in front of PyPI).
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  say "Adding this host's local CA certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >/dev/null 2>&1
fi

#!/usr/bin/env bash
# Builds the component image (Dockerfile) on a machine that cannot reach Docker Hub: its base is a root
# filesystem made here from Debian packages (debootstrap bookworm + Python 3.11 and a C++ compiler for the
# lock's one source package, pyfarmhash; then libc6 and libstdc++6
# from trixie, as scripts/setup.sh does on a host: ml-metadata and TFDV 1.21 need glibc >= 2.39).
#
#   scripts/build_image.sh [TAG]          # default TAG: imdb-bert-tfx:local
#
# Cached: the base is tagged by a hash of this script and rebuilt only when it changes; the image's
# dependency layers are Docker's build cache, rebuilt only when the Dockerfile, pyproject.toml or uv.lock
# (or the base) change. Starts dockerd if none answers (root only). Prints the image tag last.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-imdb-bert-tfx:local}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_REPOSITORY=imdb-bert-tfx-base
BASE_TAG="$BASE_REPOSITORY:$(sha256sum "$0" | cut -c1-12)"

say() { printf '\033[1m[build_image]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[build_image] error:\033[0m %s\n' "$*" >&2; exit 1; }

ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || die "no Docker engine answers and dockerd is not installed (Debian: apt-get install docker.io)."
  [ "$(id -u)" = 0 ] || die "no Docker engine answers; start one (dockerd needs root), or run this as root."
  say "Starting dockerd (log: /tmp/imdb-bert-tfx-dockerd.log)"
  nohup dockerd >/tmp/imdb-bert-tfx-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  die "dockerd did not answer within 60 s; see /tmp/imdb-bert-tfx-dockerd.log."
}

build_base() {
  command -v debootstrap >/dev/null || die "debootstrap is not installed (Debian: apt-get install debootstrap)."
  [ "$(id -u)" = 0 ] || die "debootstrap needs root to build the base image $BASE_TAG."
  local root
  root=$(mktemp -d /tmp/imdb-bert-tfx-base.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  say "Building the base image $BASE_TAG: debootstrap bookworm + Python 3.11 from $DEBIAN_MIRROR"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$DEBIAN_MIRROR" >&2 \
    || die "debootstrap failed; check access to $DEBIAN_MIRROR."
  say "Installing Python 3.11 (bookworm), then libc6 and libstdc++6 from trixie, into the base"
  cat > "$root/etc/apt/sources.list.d/trixie.sources" <<SRC
Types: deb
URIs: $DEBIAN_MIRROR
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > "$root/etc/apt/preferences.d/trixie"
  # debootstrap resolves dependencies only roughly (python3.11-venv's are missed); apt resolves them.
  chroot "$root" sh -ec 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq;
    apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv python3.11-dev g++ >/dev/null;
    apt-get install -y -qq -t trixie libc6 libstdc++6 >/dev/null; apt-get clean; rm -rf /var/lib/apt/lists/*' >&2 \
    || die "installing Python 3.11 and libc6/libstdc++6 from trixie in the base failed."
  # Containers trust what this host trusts (its local CAs: e.g. a TLS-inspecting proxy in front of PyPI),
  # and pip and uv read the system bundle rather than their own.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    say "Adding this host's local CA certificates to the base"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
  fi
  local bundle=/etc/ssl/certs/ca-certificates.crt
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV SSL_CERT_FILE=$bundle PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle" \
    --change 'ENV LANG=C.UTF-8' - "$BASE_TAG" >/dev/null
}

ensure_dockerd
if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  say "Base image $BASE_TAG is built already"
else
  build_base
fi
say "Building $TAG on $BASE_TAG (Dockerfile target kfp; cached layers are reused)"
DOCKER_BUILDKIT=0 docker build --target kfp --build-arg "BASE_IMAGE=$BASE_TAG" -t "$TAG" . >&2 \
  || die "docker build failed; see its output above."
echo "$TAG"

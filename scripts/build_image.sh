#!/usr/bin/env bash
# Builds the component image (Dockerfile, target kfp) on a machine that cannot reach Docker Hub: its base is
# a root filesystem made here from Debian packages by scripts/debian_base.sh (bookworm's Python 3.11,
# trixie's glibc).
#
#   scripts/build_image.sh [TAG]          # default TAG: imdb-bert-tfx:local
#   scripts/build_image.sh --probe        # only: can this machine run a container of the base? (exit 0/1)
#
# Cached: the base is tagged by a hash of scripts/debian_base.sh and rebuilt only when it changes; the image's
# dependency layers are Docker's build cache, rebuilt only when the Dockerfile, pyproject.toml or uv.lock
# (or the base) change. Starts dockerd if none answers (root only). Prints the image tag last.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-imdb-bert-tfx:local}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_REPOSITORY=imdb-bert-tfx-base
BASE_TAG="$BASE_REPOSITORY:$(sha256sum scripts/debian_base.sh | cut -c1-12)"

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
  local root
  root=$(mktemp -d /tmp/imdb-bert-tfx-base.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  say "Building the base image $BASE_TAG (scripts/debian_base.sh)"
  scripts/debian_base.sh "$root" "$DEBIAN_MIRROR" || die "the base's root filesystem could not be made; see above."
  # pip and uv read the system's CA bundle (with this host's local CAs) rather than their own.
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
if [ "$TAG" = "--probe" ]; then
  docker run --rm "$BASE_TAG" python3.11 -c 'print("a container ran")' >&2 \
    || die "a container of $BASE_TAG does not run here; see dockerd's log."
  exit 0
fi
say "Building $TAG on $BASE_TAG (Dockerfile target kfp; cached layers are reused)"
DOCKER_BUILDKIT=0 docker build --target kfp --build-arg "BASE_IMAGE=$BASE_TAG" -t "$TAG" . >&2 \
  || die "docker build failed; see its output above."
echo "$TAG"

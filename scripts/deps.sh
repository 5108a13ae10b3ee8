#!/usr/bin/env bash
# Finds (and, as root, installs) everything the build needs, then writes the
# make fragment given as $1 with what it found.  Run by the Makefile before
# anything is compiled; safe to run by hand: `scripts/deps.sh build/config.mk`.
#
# Needs: pkg-config, uthash, libunwind, Check, json-c (Debian: pkg-config
# uthash-dev libunwind-dev check libjson-c-dev; json-c parses traces in the
# bench) and the CUDA/cuDNN headers under CUDA_HOME (default /usr/local/cuda).
# nvcc is optional: without it the CUDA fold kernel is not built and the shim
# uses its host twin.
set -euo pipefail

out=${1:?usage: scripts/deps.sh OUTPUT.mk}
cuda_home=${CUDA_HOME:-/usr/local/cuda}

say() { printf 'deps: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Debian package -> a file whose presence proves it is installed.
declare -A probe=(
  [pkg-config]=/usr/bin/pkg-config
  [uthash-dev]=/usr/include/uthash.h
  [libunwind-dev]=/usr/include/*/libunwind.h
  [check]=/usr/include/check.h
  [libjson-c-dev]=/usr/include/json-c/json.h
)

missing=()
# A probe may be a glob (multiarch include directories); present when anything matches.
present() { compgen -G "$1" >/dev/null; }
for pkg in "${!probe[@]}"; do
  present "${probe[$pkg]}" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 &&
        apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } ||
      die "apt-get could not install: ${missing[*]}"
  else
    die "missing packages: ${missing[*]}; install them with:
    sudo apt-get install -y ${missing[*]}"
  fi
fi

for lib in check libunwind json-c; do
  pkg-config --exists "$lib" || die "pkg-config does not know $lib (is its -dev package complete?)"
done

ver_h=$cuda_home/include/cudnn_version.h
[ -r "$ver_h" ] || die "no cuDNN headers: $ver_h not found (set CUDA_HOME)"
[ -r "$cuda_home/include/cuda_runtime_api.h" ] ||
  die "no CUDA runtime headers under $cuda_home/include (set CUDA_HOME)"
cudnn_ver() { awk -v k="CUDNN_$1" '$1 == "#define" && $2 == k { print $3 }' "$ver_h"; }
cudnn_version="$(cudnn_ver MAJOR).$(cudnn_ver MINOR).$(cudnn_ver PATCHLEVEL)"
[ "$(cudnn_ver MAJOR)" -ge 9 ] 2>/dev/null || die "cuDNN 9 or newer needed, found $cudnn_version"

nvcc=""
if [ -x "$cuda_home/bin/nvcc" ]; then
  nvcc=$cuda_home/bin/nvcc
elif command -v nvcc >/dev/null; then
  nvcc=$(command -v nvcc)
else
  say "nvcc not found: building without the CUDA fold kernel (host twin only)"
fi

tmp=$(mktemp)
cat >"$tmp" <<EOF
# Written by scripts/deps.sh; do not edit.
CUDA_HOME := $cuda_home
CUDNN_VERSION := $cudnn_version
NVCC := $nvcc
CHECK_CFLAGS := $(pkg-config --cflags check)
CHECK_LIBS := $(pkg-config --libs check)
UNWIND_CFLAGS := $(pkg-config --cflags libunwind)
UNWIND_LIBS := $(pkg-config --libs libunwind)
JSON_CFLAGS := $(pkg-config --cflags json-c)
JSON_LIBS := $(pkg-config --libs json-c)
EOF
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
say "cuDNN $cudnn_version headers in $cuda_home/include${nvcc:+, nvcc $nvcc}"

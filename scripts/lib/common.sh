# SPDX-License-Identifier: Apache-2.0
# Shared by the scripts in scripts/: where things are, and how missing Debian packages get
# installed (as root, or through sudo) on a fresh machine. Sourced, never run.

SEGFIT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SEGFIT_CACHE=${SEGFIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/segfit}
JDK25_HOME=${JDK25_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"
  fi
}

# ensure_packages pkg... : installs the Debian packages that are not installed yet.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building the jar needs: the host and aarch64 C toolchains, CMake.
BUILD_PACKAGES=(cmake make gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu git unzip)
# What the demonstration needs on top: Debian's python3 with matplotlib for its charts (scripts
# call /usr/bin/python3: a python3 earlier on PATH may lack Debian's modules).
DEMO_PACKAGES=(python3 python3-matplotlib)
# What the whole test suite needs on top: qemu-user for aarch64, clang's libFuzzer, the programs
# run under the LD_PRELOAD shim, pkill (procps) for a step that hangs.
TEST_PACKAGES=(qemu-user-static clang libclang-rt-14-dev python3 file procps)

# ensure_jdk_on_path: the default java must be 17+ with javac (the README's requirement).
ensure_jdk() {
  command -v javac >/dev/null || die "a JDK 17+ (javac) must be on PATH"
}

# ensure_aarch64_sysroot: Debian's arm64 JRE unpacked into $SEGFIT_CACHE/aarch64-sysroot (no
# dpkg state change besides the foreign architecture), run by qemu-aarch64-static through
# scripts/qemu-aarch64-jvm/bin/java. Prints the sysroot path.
ensure_aarch64_sysroot() {
  local dest="$SEGFIT_CACHE/aarch64-sysroot"
  local java="$dest/usr/lib/jvm/java-17-openjdk-arm64/bin/java"
  if [ ! -x "$java" ]; then
    log "unpacking an aarch64 JRE into $dest"
    dpkg --print-foreign-architectures | grep -qx arm64 || as_root dpkg --add-architecture arm64
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    local debs; debs=$(mktemp -d)
    chmod 777 "$debs"
    (cd "$debs" && as_root apt-get download -qq openjdk-17-jre-headless:arm64 libc6:arm64 \
       zlib1g:arm64 libgcc-s1:arm64 libstdc++6:arm64 2>/dev/null)
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$dest.tmp"; done
    rm -rf "$debs" "$dest" && mv "$dest.tmp" "$dest"
  fi
  echo "$dest"
}

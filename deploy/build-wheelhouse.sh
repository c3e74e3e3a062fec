#!/usr/bin/env bash
# Build an offline installation bundle for air-gapped plants:
#
#   edge-agent-<version>-<arch>/
#     install.sh  edge-agent.service  edge-agent-panel.service  edge-agent.example.toml  deployment.md
#     wheelhouse/   every wheel edge-agent needs (dependencies included)
#   edge-agent-<version>-<arch>.tar.gz
#
# Run it on a machine with internet access and the SAME architecture and Python minor version as
# the targets (a Raspberry Pi for armhf/arm64 Pis, or `docker run --platform linux/arm64
# debian:bookworm`): packages without binary wheels for ARM (spidev, lgpio, RPi.GPIO) are compiled
# here, once, instead of on every plant-floor device.
#
# Or, on an x86_64 Debian machine as root, for a Pi: `--arch aarch64` (Pi OS 64-bit) or `--arch
# armv7l` (Pi OS 32-bit). The dependencies are resolved for that target, every binary wheel PyPI has
# for it is downloaded, and the rest are compiled inside an emulated bookworm root
# (deploy/emulated-root.sh, QEMU user mode; cached). bundle/manifest.txt lists every wheel, where it
# came from and its sha256, the compiled ones first. On the target:
#
#   tar xzf edge-agent-<version>-<arch>.tar.gz && sudo ./edge-agent-<version>-<arch>/install.sh --wheelhouse \
#       ./edge-agent-<version>-<arch>/wheelhouse
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
REPO_DIR="$(dirname "$SCRIPT_DIR")"
readonly REPO_DIR

OUT="dist"
PYTHON="python3"
EXTRAS="auto"
VERSION=""
WHEEL=""
SOURCE=""
PIP_ARGS=()
WITH=()
ARCH=""

usage() {
    cat <<'EOF'
Usage: build-wheelhouse.sh [options]
  --out DIR          where to put the bundle and its tarball (default: dist)
  --version VER      edge-agent version from PyPI (default: latest)
  --wheel FILE       bundle this edge-agent wheel (its dependencies come from PyPI)
  --source DIR       build edge-agent from this source tree (e.g. a release checkout)
  --extras LIST      pip extras (default: "pi" on ARM, none elsewhere; "" for none)
  --python PATH      interpreter matching the targets' Python (default: python3)
  --pip-arg ARG      extra argument for `pip wheel` (repeatable), e.g. --pip-arg=--extra-index-url=URL
  --with PKG         also bundle this third-party driver/plugin package (name, requirement or wheel
                     file; repeatable): the bundle's install.sh installs it too
  --arch ARCH        build for another architecture from this x86_64 machine: aarch64 (Pi OS 64-bit)
                     or armv7l (Pi OS 32-bit); needs root, qemu-user-static, binfmt-support, debootstrap
EOF
}

die() { echo "build-wheelhouse.sh: error: $*" >&2; exit 1; }

parse_args() {
    while (($#)); do
        case "$1" in
            --out) OUT="${2:?--out needs a directory}"; shift ;;
            --version) VERSION="${2:?--version needs a value}"; shift ;;
            --wheel) WHEEL="$(realpath "${2:?--wheel needs a file}")"; shift ;;
            --source) SOURCE="$(realpath "${2:?--source needs a directory}")"; shift ;;
            --extras) EXTRAS="${2?--extras needs a value}"; shift ;;
            --python) PYTHON="${2:?--python needs a path}"; shift ;;
            --pip-arg) PIP_ARGS+=("${2:?--pip-arg needs a value}"); shift ;;
            --with) WITH+=("${2:?--with needs a package or wheel}"); shift ;;
            --arch) ARCH="${2:?--arch needs aarch64 or armv7l}"; shift ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done
    [[ -z "$WHEEL" || -f "$WHEEL" ]] || die "no such wheel: $WHEEL"
    [[ -z "$SOURCE" || -d "$SOURCE" ]] || die "no such source tree: $SOURCE"
    case "$ARCH" in "" | aarch64 | armv7l) ;; *) die "--arch must be aarch64 or armv7l, not '$ARCH'" ;; esac
}

requirement() {
    local extras="$EXTRAS" spec="edge-agent"
    if [[ "$extras" == auto ]]; then
        case "${ARCH:-$(uname -m)}" in aarch64 | armv7l | armv6l) extras="pi" ;; *) extras="" ;; esac
    fi
    [[ -z "$WHEEL" ]] || spec="$WHEEL"
    [[ -z "$SOURCE" ]] || spec="$SOURCE"
    [[ -z "$extras" ]] || spec="${spec}[${extras}]"
    [[ -z "$VERSION" || -n "$WHEEL$SOURCE" ]] || spec="$spec==$VERSION"
    echo "$spec"
}

# pip of the chosen interpreter, or of a throw-away venv when the system has no pip.
pip_cmd() {
    if "$PYTHON" -m pip --version >/dev/null 2>&1; then
        PIP=("$PYTHON" -m pip)
    else
        "$PYTHON" -m venv "$WORK/pip-venv"
        PIP=("$WORK/pip-venv/bin/python" -m pip)
    fi
}

copy_asset() {
    local dest="$1" candidate
    shift
    for candidate in "$@"; do
        if [[ -f "$candidate" ]]; then
            install -m "$(stat -c %a "$candidate")" "$candidate" "$dest/"
            return 0
        fi
    done
    die "missing asset: $*"
}

cleanup() {
    trap '' INT TERM HUP # a second signal must not cut the clean-up short
    if [[ -n "$ARCH" ]]; then er_session_end; fi
    rm -rf "$WORK"
}

main() {
    parse_args "$@"
    WORK="$(mktemp -d)"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    local req version arch name bundle
    req="$(requirement)"
    local extra=() entry
    for entry in "${WITH[@]}"; do
        if [[ "$entry" == *.whl ]]; then
            [[ -f "$entry" ]] || die "no such wheel: $entry"
            entry="$(realpath "$entry")"
        fi
        extra+=("$entry")
    done
    if [[ -n "$ARCH" ]]; then
        # shellcheck source=deploy/wheelhouse-cross.sh
        source "$SCRIPT_DIR/wheelhouse-cross.sh"
        cross_wheelhouse "$req" "$WORK/wheelhouse" ${extra[@]+"${extra[@]}"}
    else
        pip_cmd
        echo "==> building wheels for $req"
        "${PIP[@]}" wheel --disable-pip-version-check --no-input -q -w "$WORK/wheelhouse" "${PIP_ARGS[@]}" "$req" ${extra[@]+"${extra[@]}"}
    fi
    version="$(find "$WORK/wheelhouse" -maxdepth 1 -name 'edge_agent-*.whl' -printf '%f\n' | head -n 1 | cut -d- -f2)"
    [[ -n "$version" ]] || die "no edge_agent wheel was built"
    arch="${ARCH:-$(uname -m)}"
    name="edge-agent-$version-$arch"
    bundle="$OUT/$name"
    rm -rf "$bundle"
    mkdir -p "$bundle"
    mv "$WORK/wheelhouse" "$bundle/wheelhouse"
    [[ ! -f "$WORK/manifest.txt" ]] || mv "$WORK/manifest.txt" "$bundle/manifest.txt"
    copy_asset "$bundle" "$SCRIPT_DIR/install.sh"
    copy_asset "$bundle" "$SCRIPT_DIR/edge-agent.example.toml"
    copy_asset "$bundle" "$SCRIPT_DIR/edge-agent.service" "$REPO_DIR/systemd/edge-agent.service"
    copy_asset "$bundle" "$SCRIPT_DIR/edge-agent-panel.service" "$REPO_DIR/systemd/edge-agent-panel.service"
    copy_asset "$bundle" "$SCRIPT_DIR/deployment.md" "$REPO_DIR/docs/deployment.md"
    if ((${#extra[@]})); then
        # install.sh next to this list installs these too (by name, from the bundled wheelhouse)
        for entry in "${extra[@]}"; do
            if [[ "$entry" == *.whl ]]; then basename "$entry" | cut -d- -f1; else echo "$entry"; fi
        done >"$bundle/extra-packages.txt"
    fi
    tar -C "$OUT" -czf "$OUT/$name.tar.gz" "$name"
    echo "==> $bundle ($(find "$bundle/wheelhouse" -name '*.whl' | wc -l) wheels), $OUT/$name.tar.gz"
    echo "    on the target: sudo ./$name/install.sh --wheelhouse ./$name/wheelhouse"
}

main "$@"

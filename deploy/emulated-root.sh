#!/usr/bin/env bash
# An emulated Raspberry Pi OS (Debian 12 "bookworm") root for arm64 or armhf on an x86_64 machine,
# through QEMU user-mode emulation (binfmt_misc). Used by `make test-arm64`, `make smoke-armhf` and
# `deploy/build-wheelhouse.sh --arch ...` (which compiles the packages PyPI has no wheel for in it).
#
#   deploy/emulated-root.sh check ARCH         what is missing on this machine, and how to get it
#   deploy/emulated-root.sh build ARCH         build (or reuse) the cached base root; prints its path
#   deploy/emulated-root.sh shell ARCH [CMD]   a throw-away session: CMD (default bash) in a chroot
#
# ARCH is arm64 or armhf (Debian's names; `uname -m` in them says aarch64 or armv7l).
# The base root is built once with debootstrap and cached OUTSIDE the repository, in
# $EDGE_AGENT_CACHE/roots (default /var/cache/edge-agent/roots); every session runs on an overlay over it
# (upper layer in a temporary directory), so the cache stays pristine and a session leaves nothing.
# A session bind-mounts /proc, /sys, /dev and /dev/pts (without /dev/pts, os.openpty() fails) and
# copies in the host's resolv.conf and CA bundle (pip needs it behind a TLS-inspecting proxy).
# Sourced by the other scripts: they call er_session_start and trap er_session_end.
set -euo pipefail

ER_CACHE="${EDGE_AGENT_CACHE:-/var/cache/edge-agent}"
ER_ROOTS="$ER_CACHE/roots"
ER_SUITE="bookworm"
# The mirror apt already uses on this machine, else Debian's.
er_mirror() {
    local m
    m="$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
        grep -oE 'https?://[^ ]+' | grep -v security | head -n 1 || true)"
    echo "${EDGE_AGENT_MIRROR:-${m:-http://deb.debian.org/debian}}"
}

# What every root gets: Python with venv/pip/headers and a compiler (spidev, RPi.GPIO, lgpio and on
# armhf msgpack/msgspec have no wheels), mosquitto and socat for the test suite, systemd for
# systemctl/systemd-analyze. armhf also gets Debian's numpy (PyPI has no cp311 armv7l wheel).
er_packages() {
    local p="python3,python3-venv,python3-pip,python3-dev,build-essential,ca-certificates,mosquitto,socat,systemd,procps"
    [[ "$1" != armhf ]] || p="$p,python3-numpy,libffi-dev,swig"
    echo "$p"
}

er_die() { echo "emulated-root: error: $*" >&2; exit 2; }
er_note() { echo "emulated-root: $*" >&2; }

er_qemu() { case "$1" in arm64) echo aarch64 ;; armhf) echo arm ;; *) er_die "unknown arch '$1' (arm64 or armhf)" ;; esac; }

# Everything this needs, each with the command that provides it. Installs/mounts what it can when
# root (like `make sysdeps`); otherwise explains and fails.
er_check() {
    local arch="$1" q need=() fix=()
    q="$(er_qemu "$arch")"
    if ((EUID != 0)); then
        er_die "needs root (debootstrap, mount and chroot): run 'sudo make ...'. It also needs the apt packages
  qemu-user-static binfmt-support debootstrap, and binfmt_misc mounted and enabled:
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && update-binfmts --enable"
    fi
    command -v debootstrap >/dev/null || need+=(debootstrap)
    [[ -x /usr/bin/qemu-$q-static ]] || need+=(qemu-user-static)
    command -v update-binfmts >/dev/null || need+=(binfmt-support)
    if ((${#need[@]})); then
        command -v apt-get >/dev/null || er_die "missing: ${need[*]} (no apt-get here: install them by hand)"
        er_note "installing ${need[*]}"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } ||
            er_die "could not install: ${need[*]} (apt-get install qemu-user-static binfmt-support debootstrap)"
    fi
    if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
        er_note "mounting binfmt_misc"
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
            er_die "binfmt_misc cannot be mounted (a container without it?): the host kernel must run $arch binaries
  through qemu-$q-static; on the host: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && update-binfmts --enable"
    fi
    if ! grep -qx enabled "/proc/sys/fs/binfmt_misc/qemu-$q" 2>/dev/null; then
        er_note "enabling the binfmt handlers"
        update-binfmts --enable >/dev/null 2>&1 || true
        grep -qx enabled "/proc/sys/fs/binfmt_misc/qemu-$q" 2>/dev/null ||
            er_die "no enabled binfmt handler for $arch (/proc/sys/fs/binfmt_misc/qemu-$q): update-binfmts --enable qemu-$q"
    fi
    # F (fix binary): the kernel holds the interpreter open, so the chroot needs no copy of it.
    grep -q '^flags:.*F' "/proc/sys/fs/binfmt_misc/qemu-$q" ||
        fix+=("the qemu-$q handler lacks the F flag: copy /usr/bin/qemu-$q-static into the root's /usr/bin")
    ((${#fix[@]} == 0)) || er_note "${fix[*]}"
    command -v chroot >/dev/null || er_die "chroot not found (coreutils)"
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
}

# The cached base root of ARCH (built on first use, ~3 min and ~750 MB for arm64). Prints its path.
er_build() {
    local arch="$1" root stamp want
    er_check "$arch"
    root="$ER_ROOTS/$ER_SUITE-$arch"
    stamp="$root/etc/edge-agent-root"
    want="$ER_SUITE $arch $(er_packages "$arch")"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        echo "$root"
        return 0
    fi
    [[ ! -e "$root" ]] || er_note "$root was built with other packages: rebuilding it"
    mkdir -p "$ER_ROOTS"
    rm -rf "$root.tmp" "$root"
    er_note "debootstrap $ER_SUITE $arch into $root (a few minutes; cached for next time)"
    local t0=$SECONDS
    if ! nice -n 10 debootstrap --arch="$arch" --variant=minbase --include="$(er_packages "$arch")" \
        "$ER_SUITE" "$root.tmp" "$(er_mirror)" >"$ER_ROOTS/debootstrap-$arch.log" 2>&1; then
        tail -n 20 "$ER_ROOTS/debootstrap-$arch.log" >&2
        er_die "debootstrap failed (log: $ER_ROOTS/debootstrap-$arch.log)"
    fi
    chroot "$root.tmp" apt-get clean
    # No services may start inside the chroot (mosquitto's postinst, apt upgrades).
    printf '#!/bin/sh\nexit 101\n' >"$root.tmp/usr/sbin/policy-rc.d"
    chmod 0755 "$root.tmp/usr/sbin/policy-rc.d"
    echo "$want" >"$root.tmp/etc/edge-agent-root"
    mv "$root.tmp" "$root"
    er_note "built $root in $((SECONDS - t0)) s ($(du -sh "$root" | cut -f1))"
    echo "$root"
}

# er_session_start ARCH: an overlay over the base root with the mounts a test needs; sets ER_DIR
# (the session's directory) and ER_ROOT (the chroot). The caller must `trap er_session_end EXIT`.
ER_DIR=""
ER_ROOT=""
ER_MOUNTS=()
er_session_start() {
    local arch="$1" base
    base="$(er_build "$arch")"
    er_reap_stale
    ER_DIR="$(mktemp -d "${TMPDIR:-/var/tmp}/edge-agent-$arch.XXXXXX")"
    ER_ROOT="$ER_DIR/root"
    mkdir -p "$ER_DIR/upper" "$ER_DIR/work" "$ER_ROOT"
    echo "$$" >"$ER_DIR/owner.pid"
    if mount -t overlay overlay -o "lowerdir=$base,upperdir=$ER_DIR/upper,workdir=$ER_DIR/work" "$ER_ROOT" 2>/dev/null; then
        ER_MOUNTS+=("$ER_ROOT")
    else
        er_note "no overlayfs here: copying the base root (slower)"
        cp -a "$base/." "$ER_ROOT/"
    fi
    er_mount -t proc proc "$ER_ROOT/proc"
    er_mount --bind /sys "$ER_ROOT/sys"
    er_mount --bind /dev "$ER_ROOT/dev"
    er_mount --bind /dev/pts "$ER_ROOT/dev/pts"
    cp -L /etc/resolv.conf "$ER_ROOT/etc/resolv.conf" 2>/dev/null || true
    cp -L "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ER_ROOT/etc/ssl/certs/host-ca-bundle.crt" 2>/dev/null || true
    er_note "session $ER_DIR ($arch)"
}

er_mount() {
    local target="${*: -1}"
    mount "$@"
    ER_MOUNTS+=("$target")
}

# Sessions whose owner died without cleaning up (SIGKILL, a power cut): unmount and remove them.
er_reap_stale() {
    local dir pid m
    for dir in "${TMPDIR:-/var/tmp}"/edge-agent-*.*; do
        [[ -f "$dir/owner.pid" ]] || continue
        pid="$(cat "$dir/owner.pid")"
        ! kill -0 "$pid" 2>/dev/null || continue
        er_note "removing the stale session $dir (owner $pid is gone)"
        # Deepest mount points first.
        grep -o " $dir/[^ ]*" /proc/mounts | sort -r | while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m" || true
        done
        grep -q " $dir/" /proc/mounts || rm -rf "$dir"
    done
}

# Unmounts in reverse order (lazily when busy) and removes the session; safe to call twice.
er_session_end() {
    local i
    for ((i = ${#ER_MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${ER_MOUNTS[i]}" 2>/dev/null || umount -l "${ER_MOUNTS[i]}" 2>/dev/null || true
    done
    ER_MOUNTS=()
    if [[ -n "$ER_DIR" && -d "$ER_DIR" ]]; then
        # Never delete through a mount point that is still there.
        if grep -q " $ER_DIR/" /proc/mounts; then
            er_note "mounts left under $ER_DIR, not removing it"
        else
            rm -rf "$ER_DIR"
        fi
    fi
    ER_DIR=""
}

# er_run CMD...: a command in the session's chroot, with a clean environment (the host's pip
# settings and paths mean nothing in there) and the host's CA bundle for pip.
er_run() {
    local ca=/etc/ssl/certs/host-ca-bundle.crt
    [[ -f "$ER_ROOT$ca" ]] || ca=/etc/ssl/certs/ca-certificates.crt
    env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        PIP_CERT="$ca" SSL_CERT_FILE="$ca" REQUESTS_CA_BUNDLE="$ca" PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_ROOT_USER_ACTION=ignore ${ER_ENV[@]+"${ER_ENV[@]}"} \
        ${ER_NICE:+nice -n "$ER_NICE"} chroot "$ER_ROOT" "$@"
}
ER_ENV=()
ER_NICE="" # a niceness increment for er_run (negative needs root)

er_main() {
    local cmd="${1:-}" arch="${2:-}"
    [[ -n "$arch" ]] || { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
    case "$cmd" in
        check) er_check "$arch" && echo "ready for $arch" ;;
        build) er_build "$arch" ;;
        shell)
            trap er_session_end EXIT
            trap 'exit 130' INT TERM
            er_session_start "$arch"
            shift 2
            if (($#)); then er_run "$@"; else er_run /bin/bash; fi
            ;;
        *) er_die "unknown command '$cmd' (check, build, shell)" ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then er_main "$@"; fi

#!/usr/bin/env bash
# Install, upgrade or remove edge-agent as a hardened systemd service.
#
# Raspberry Pi OS Bookworm (arm64/armhf), Debian 12 and Ubuntu 22.04+ (amd64). Idempotent: run it
# again to repair or upgrade. Each upgrade goes into a fresh venv next to the running one, is
# checked (--version, check-config), then a symlink is switched and the service restarted; if any
# step fails the old version keeps running. Config (/etc/edge-agent) and state (/var/lib/edge-agent)
# are never overwritten. See docs/deployment.md.
#
# CI mode: --root DIR installs below DIR (venv, config, unit, drop-in) and skips, with a printed
# note, every step that needs the real system (useradd, chown, apt-get, raspi-config, systemctl).
set -euo pipefail
# Whatever root's umask is on this host, the venv must be readable by the service user.
umask 022

readonly PKG="edge-agent"
readonly SVC_USER="edge-agent"
readonly PANEL_USER="edge-agent-panel"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

ROOT="/"
DRY_RUN=0
MODE="install"
PURGE=0
WHEEL=""
WHEELHOUSE=""
SOURCE=""
VERSION=""
EXTRAS="auto"
PYTHON="python3"
GROUPS_WANTED="auto"
ENABLE_SPI=0
ENABLE_I2C=0
START=1
FORCE=0
SETTLE_S=10
PANEL=0
PIP_ARGS=()
WITH=()    # third-party packages (drivers, plugins) to install beside edge-agent
WITHOUT=() # remembered third-party packages to drop

usage() {
    cat <<'EOF'
Usage: install.sh [options]

Package source (default: the latest edge-agent from PyPI):
  --version VER        install this version from PyPI
  --wheel FILE         install this wheel (dependencies from PyPI, or from --wheelhouse)
  --wheelhouse DIR     offline: install only from this directory (deploy/build-wheelhouse.sh)
  --source DIR         install from a source tree (development)
  --extras LIST        pip extras, e.g. "pi" (default: "pi" on ARM, none elsewhere; "" for none)
  --python PATH        interpreter for the venv, >= 3.11 (default: python3)
  --pip-arg ARG        extra argument for `pip install` (repeatable)
  --with PKG           also install this third-party driver/plugin package: a name (from PyPI or
                       --wheelhouse), a requirement ("edge-sht3x==1.2") or a wheel file (repeatable);
                       remembered in /etc/edge-agent/extra-packages.txt and reinstalled on upgrades
  --without NAME       forget a remembered --with package (its lines in extra-packages.txt)

Host:
  --groups LIST        supplementary groups: comma list of gpio,spi,i2c,dialout, "all" or "none"
                       (default: detected from the devices named in the config)
  --enable-spi         enable the SPI bus (raspi-config nonint), reboot may be needed
  --enable-i2c         enable the I2C bus (raspi-config nonint), reboot may be needed
  --no-start           install and enable, but do not (re)start the service
  --force              reinstall even when the same version is installed
  --settle SECONDS     how long the restarted service must stay up before the upgrade counts
                       as good (default: 10; otherwise the previous release is restored)
  --panel              also install the technician's panel as edge-agent-panel.service (its own
                       user; starts once /etc/edge-agent-panel/panel.toml exists; docs/panel.md)

Removal:
  --uninstall          remove program, unit and drop-ins; keep config, state and the user
  --purge              with --uninstall: also remove config, state and the user

Testing:
  --root DIR           prefix for every path; system steps are skipped with a note
  --dry-run            print the steps, change nothing
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
note() { echo "==> $*"; }

parse_args() {
    while (($#)); do
        case "$1" in
            --version) VERSION="${2:?--version needs a value}"; shift ;;
            --wheel) WHEEL="${2:?--wheel needs a file}"; shift ;;
            --wheelhouse) WHEELHOUSE="${2:?--wheelhouse needs a directory}"; shift ;;
            --source) SOURCE="${2:?--source needs a directory}"; shift ;;
            --extras) EXTRAS="${2?--extras needs a value}"; shift ;;
            --python) PYTHON="${2:?--python needs a path}"; shift ;;
            --pip-arg) PIP_ARGS+=("${2:?--pip-arg needs a value}"); shift ;;
            --with) WITH+=("${2:?--with needs a package or wheel}"); shift ;;
            --without) WITHOUT+=("${2:?--without needs a package name}"); shift ;;
            --groups) GROUPS_WANTED="${2?--groups needs a value}"; shift ;;
            --enable-spi) ENABLE_SPI=1 ;;
            --enable-i2c) ENABLE_I2C=1 ;;
            --no-start) START=0 ;;
            --force) FORCE=1 ;;
            --settle) SETTLE_S="${2:?--settle needs seconds}"; shift ;;
            --panel) PANEL=1 ;;
            --uninstall) MODE="uninstall" ;;
            --purge) PURGE=1 ;;
            --root) ROOT="${2:?--root needs a directory}"; shift ;;
            --dry-run) DRY_RUN=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done
    [[ -z "$WHEEL" || -f "$WHEEL" ]] || die "no such wheel: $WHEEL"
    [[ -z "$WHEELHOUSE" || -d "$WHEELHOUSE" ]] || die "no such wheelhouse: $WHEELHOUSE"
    [[ -z "$SOURCE" || -d "$SOURCE" ]] || die "no such source tree: $SOURCE"
    ((PURGE == 0)) || [[ "$MODE" == "uninstall" ]] || die "--purge only goes with --uninstall"
    [[ -z "$WHEEL" ]] || WHEEL="$(realpath "$WHEEL")"
    [[ -z "$WHEELHOUSE" ]] || WHEELHOUSE="$(realpath "$WHEELHOUSE")"
    [[ -z "$SOURCE" ]] || SOURCE="$(realpath "$SOURCE")"
    local i
    for i in "${!WITH[@]}"; do
        if [[ "${WITH[$i]}" == *.whl ]]; then
            [[ -f "${WITH[$i]}" ]] || die "no such wheel: ${WITH[$i]}"
            WITH[i]="$(realpath "${WITH[$i]}")"
        fi
    done
}

set_paths() {
    if [[ "$ROOT" != "/" ]]; then
        ((DRY_RUN)) || mkdir -p "$ROOT"
        ROOT="$(realpath -m "$ROOT")"
    fi
    local p="${ROOT%/}"
    APP="$p/opt/edge-agent"
    RELEASES="$APP/releases"
    CURRENT="$APP/venv"
    ETC="$p/etc/edge-agent"
    STATE="$p/var/lib/edge-agent"
    EXTRA_LIST="$ETC/extra-packages.txt"
    EXTRA_WHEELS="$APP/packages"
    UNIT_DIR="$p/etc/systemd/system"
    UNIT="$UNIT_DIR/edge-agent.service"
    DROPIN_DIR="$UNIT_DIR/edge-agent.service.d"
    PANEL_UNIT="$UNIT_DIR/edge-agent-panel.service"
    PANEL_ETC="$p/etc/edge-agent-panel"
}

real_system() { [[ "$ROOT" == "/" ]]; }

# Print a step, then perform it unless --dry-run.
run() {
    echo "+ $(quoted "$@")"
    ((DRY_RUN)) || "$@"
}

quoted() {
    local s
    s="$(printf '%q ' "$@")"
    echo "${s% }"
}

# A step that changes the real system: skipped with a note under --root.
sys_run() {
    if real_system; then
        run "$@"
    else
        echo "- skipped (--root): $(quoted "$@")"
    fi
}

# Write stdin to a file (printed, and skipped under --dry-run).
write_file() {
    local path="$1" mode="$2" content
    content="$(cat)"
    echo "+ write $path (mode $mode)"
    ((DRY_RUN)) && return 0
    printf '%s\n' "$content" >"$path.tmp"
    chmod "$mode" "$path.tmp"
    mv -f "$path.tmp" "$path"
}

find_asset() {
    local name
    for name in "$@"; do
        if [[ -f "$SCRIPT_DIR/$name" ]]; then
            echo "$SCRIPT_DIR/$name"
            return 0
        fi
    done
    return 1
}

check_prerequisites() {
    if real_system && ((!DRY_RUN)) && ((EUID != 0)); then
        die "run as root (sudo), or use --root DIR / --dry-run"
    fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (apt-get install python3)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$PYTHON is older than 3.11 (Raspberry Pi OS Bookworm and Debian 12 ship 3.11)"
    local missing=()
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    # RPi.GPIO and spidev have no ARM wheels on PyPI: pip compiles them (the offline bundle does not).
    if [[ ",$(resolved_extras)," == *,pi,* && -z "$WHEELHOUSE" ]]; then
        command -v gcc >/dev/null || missing+=(gcc)
        "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ||
            missing+=(python3-dev)
    fi
    ((${#missing[@]})) || return 0
    real_system || die "missing on this host: ${missing[*]}"
    command -v apt-get >/dev/null || die "missing on this host: ${missing[*]}"
    sys_run apt-get update
    sys_run apt-get install -y "${missing[@]}"
}

ensure_user() {
    if real_system && getent group "$SVC_USER" >/dev/null; then
        note "group $SVC_USER exists"
    else
        sys_run groupadd --system "$SVC_USER"
    fi
    if real_system && getent passwd "$SVC_USER" >/dev/null; then
        note "user $SVC_USER exists"
    else
        sys_run useradd --system --gid "$SVC_USER" --home-dir /var/lib/edge-agent --no-create-home \
            --shell /usr/sbin/nologin --comment "edge-agent service" "$SVC_USER"
    fi
}

enable_buses() {
    local bus
    for bus in spi i2c; do
        if [[ "$bus" == spi ]] && ((!ENABLE_SPI)); then continue; fi
        if [[ "$bus" == i2c ]] && ((!ENABLE_I2C)); then continue; fi
        if real_system && ! command -v raspi-config >/dev/null; then
            note "raspi-config not found: enable $bus with your board's device tree overlay"
            continue
        fi
        sys_run raspi-config nonint "do_$bus" 0 # 0 = enable
    done
}

install_config() {
    local example
    example="$(find_asset edge-agent.example.toml)" || die "edge-agent.example.toml not found next to install.sh"
    run install -d -m 0750 "$ETC"
    run install -m 0640 "$example" "$ETC/config.toml.example"
    if [[ -e "$ETC/config.toml" ]]; then
        note "keeping the existing $ETC/config.toml"
    else
        run install -m 0640 "$example" "$ETC/config.toml"
    fi
    # root owns the config; the service reads it through its group.
    sys_run chown -R root:"$SVC_USER" "$ETC"
}

resolved_extras() {
    if [[ "$EXTRAS" != auto ]]; then
        echo "$EXTRAS"
        return
    fi
    case "$(uname -m)" in aarch64 | armv7l | armv6l) echo "pi" ;; *) echo "" ;; esac
}

pip_target() {
    local extras spec
    extras="$(resolved_extras)"
    if [[ -n "$WHEEL" ]]; then
        spec="$WHEEL"
    elif [[ -n "$SOURCE" ]]; then
        spec="$SOURCE"
    else
        spec="$PKG"
    fi
    [[ -z "$extras" ]] || spec="${spec}[${extras}]"
    [[ -z "$VERSION" || -n "$WHEEL$SOURCE" ]] || spec="$spec==$VERSION"
    echo "$spec"
}

# The third-party packages of this install: remembered ones, the bundle's, and --with; minus
# --without. A wheel file is copied below $APP/packages so later upgrades still find it.
remember_packages() {
    local line name kept=() entry bundle="$SCRIPT_DIR/extra-packages.txt"
    if [[ -f "$EXTRA_LIST" ]]; then
        while IFS= read -r line; do
            [[ -z "$line" || "$line" == \#* ]] || kept+=("$line")
        done <"$EXTRA_LIST"
    fi
    if [[ -f "$bundle" && -n "$WHEELHOUSE" ]]; then
        while IFS= read -r line; do
            [[ -z "$line" || "$line" == \#* ]] || kept+=("$line")
        done <"$bundle"
    fi
    for entry in "${WITH[@]}"; do
        if [[ "$entry" == *.whl ]]; then
            run install -d -m 0755 "$EXTRA_WHEELS"
            run install -m 0644 "$entry" "$EXTRA_WHEELS/"
            entry="$EXTRA_WHEELS/$(basename "$entry")"
        fi
        kept+=("$entry")
    done
    local dropped=" "
    for entry in "${WITHOUT[@]}"; do dropped+="$(package_name "$entry") "; done
    EXTRA_PACKAGES=()
    for entry in "${kept[@]}"; do
        name="$(package_name "$entry")"
        if [[ "$dropped" == *" $name "* ]]; then continue; fi
        # a newer --with of the same package replaces the remembered one
        local i
        for i in "${!EXTRA_PACKAGES[@]}"; do
            [[ "$(package_name "${EXTRA_PACKAGES[$i]}")" != "$name" ]] || unset 'EXTRA_PACKAGES[i]'
        done
        EXTRA_PACKAGES+=("$entry")
    done
    EXTRA_PACKAGES=("${EXTRA_PACKAGES[@]}")
    ((${#EXTRA_PACKAGES[@]})) && note "third-party packages: ${EXTRA_PACKAGES[*]}"
    return 0
}

# Normalised distribution name of a requirement or wheel path ("Edge.SHT3x>=1" -> edge-sht3x).
package_name() {
    local s="$1"
    [[ "$s" == *.whl ]] && s="$(basename "$s" | cut -d- -f1)"
    s="${s%%[<>=!~;[ ]*}"
    s="${s,,}"
    echo "${s//[._]/-}"
}

save_packages() {
    local entry
    {
        echo "# Third-party edge-agent packages, reinstalled by install.sh on every upgrade."
        echo "# Add with install.sh --with PKG_OR_WHEEL, drop with install.sh --without NAME."
        for entry in "${EXTRA_PACKAGES[@]}"; do echo "$entry"; done
    } | write_file "$EXTRA_LIST" 0644
}

installed_version() {
    local venv="$1" out
    out="$("$venv/bin/edge-agent" --version 2>/dev/null)" || return 1
    echo "${out##* }"
}

# Build a fresh venv in $NEW and check it; on failure remove it and stop (nothing else changed).
build_release() {
    local stamp pip=(--disable-pip-version-check --no-input --no-cache-dir) target
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    NEW="$RELEASES/$stamp"
    local n=1
    while [[ -e "$NEW" ]]; do NEW="$RELEASES/$stamp-$((n++))"; done
    [[ -z "$WHEELHOUSE" ]] || pip+=(--no-index --find-links "$WHEELHOUSE")
    target="$(pip_target)"
    run install -d -m 0755 "$APP" "$RELEASES"
    note "building release $NEW from $target"
    if ! { run "$PYTHON" -m venv "$NEW" &&
        run "$NEW/bin/python" -m pip install -q "${pip[@]}" "${PIP_ARGS[@]}" "$target" "${EXTRA_PACKAGES[@]}"; }; then
        discard_release "installing the package failed"
    fi
    if ((DRY_RUN)); then
        run "$NEW/bin/edge-agent" --version
        check_config "$NEW"
        return 0
    fi
    NEW_VERSION="$(installed_version "$NEW")" || discard_release "'edge-agent --version' failed"
    note "new release reports version $NEW_VERSION"
    check_config "$NEW" || discard_release "the new release rejects $ETC/config.toml"
}

discard_release() {
    echo "install.sh: $1; removing $NEW; the installed version (if any) is untouched" >&2
    ((DRY_RUN)) || rm -rf "$NEW"
    exit 1
}

check_config() {
    local venv="$1"
    if real_system && ((!DRY_RUN)) && command -v runuser >/dev/null && id "$SVC_USER" >/dev/null 2>&1; then
        run runuser -u "$SVC_USER" -- "$venv/bin/edge-agent" check-config "$ETC/config.toml"
    else
        run "$venv/bin/edge-agent" check-config "$ETC/config.toml"
    fi
}

# Point $CURRENT at a release directory, atomically (rename of a new symlink).
switch_to() {
    local target="$1"
    run ln -sfn "releases/$(basename "$target")" "$CURRENT.new"
    run mv -T "$CURRENT.new" "$CURRENT"
}

detect_groups() {
    local cfg="$ETC/config.toml" body=""
    case "$GROUPS_WANTED" in
        auto) ;;
        all) echo "gpio spi i2c dialout"; return ;;
        none | "") return ;;
        *) echo "${GROUPS_WANTED//,/ }"; return ;;
    esac
    # The drivers say what they need (DriverSpec.device_access, for their options) ...
    if [[ -f "$cfg" ]] && "$CURRENT/bin/edge-agent" device-groups "$cfg" 2>/dev/null; then
        return 0
    fi
    # ... a release without `device-groups`: guess from the config's text.
    [[ -f "$cfg" ]] && body="$(grep -v '^[[:space:]]*#' "$cfg" || true)"
    grep -Eq 'spidev|bus *= *"spi"' <<<"$body" && echo spi
    grep -Eq '/dev/i2c|bus *= *"i2c"' <<<"$body" && echo i2c
    grep -Eq 'gpiochip|gpiomem|(type|plugin) *= *"gpio"' <<<"$body" && echo gpio
    grep -Eq '/dev/tty|serial_line|"rtu"|rtu://' <<<"$body" && echo dialout
    return 0
}

group_exists() {
    if real_system; then
        getent group "$1" >/dev/null
    else
        grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null
    fi
}

# The unit allows only private ranges; a broker or device of the config elsewhere gets a drop-in.
write_addresses() {
    local cfg="$ETC/config.toml" text=""
    if [[ -f "$cfg" ]] && text="$("$CURRENT/bin/edge-agent" unit-addresses "$cfg" 2>/dev/null)" && [[ -n "$text" ]]; then
        note "addresses outside the private ranges allowed for the config's hosts: $DROPIN_DIR/20-addresses.conf"
        write_file "$DROPIN_DIR/20-addresses.conf" 0644 <<<"$text"
    else
        run rm -f "$DROPIN_DIR/20-addresses.conf"
    fi
}

install_unit() {
    local unit groups=() g
    unit="$(find_asset edge-agent.service ../systemd/edge-agent.service)" || die "edge-agent.service not found"
    run install -d -m 0755 "$UNIT_DIR" "$DROPIN_DIR"
    run install -m 0644 "$unit" "$UNIT"
    for g in $(detect_groups); do
        [[ "$g" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "invalid group name: $g"
        if group_exists "$g"; then
            groups+=("$g")
        else
            note "group $g does not exist on this host: not added (its devices stay unreachable)"
        fi
    done
    note "supplementary groups: ${groups[*]:-none}"
    write_file "$DROPIN_DIR/10-groups.conf" 0644 <<EOF
# Written by install.sh: the device groups the configured drivers need and this host has.
# Re-run install.sh (or install.sh --groups LIST) after adding hardware to the config.
[Service]
SupplementaryGroups=
SupplementaryGroups=${groups[*]}
EOF
    write_addresses
    local doc
    if doc="$(find_asset deployment.md ../docs/deployment.md)"; then
        run install -D -m 0644 "$doc" "$APP/docs/deployment.md"
    fi
    sys_run systemctl daemon-reload
    sys_run systemctl enable edge-agent.service
}

# The panel (--panel): its own user and config directory, its unit; started once it has a config.
install_panel() {
    local unit
    ((PANEL)) || return 0
    unit="$(find_asset edge-agent-panel.service ../systemd/edge-agent-panel.service)" ||
        die "edge-agent-panel.service not found"
    if real_system && getent passwd "$PANEL_USER" >/dev/null; then
        note "user $PANEL_USER exists"
    else
        sys_run useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "edge-agent panel" "$PANEL_USER"
    fi
    # Owned by the panel's user, so `sudo -u edge-agent-panel edge-agent panel-user ...` can write
    # its users file; read-only for the running service all the same (ProtectSystem=strict).
    run install -d -m 0700 "$PANEL_ETC"
    sys_run chown "$PANEL_USER:$PANEL_USER" "$PANEL_ETC"
    run install -m 0644 "$unit" "$PANEL_UNIT"
    sys_run systemctl daemon-reload
    sys_run systemctl enable edge-agent-panel.service
    if [[ -f "$PANEL_ETC/panel.toml" ]] && ((START)); then
        sys_run systemctl restart edge-agent-panel.service
    else
        note "panel: write $PANEL_ETC/panel.toml (docs/panel.md), then systemctl start edge-agent-panel"
    fi
}

# After READY=1 (which `systemctl restart` waits for), the service must stay up for SETTLE_S.
stays_up() {
    local since
    since="$(systemctl show -p ActiveEnterTimestampMonotonic --value edge-agent.service)"
    echo "+ sleep $SETTLE_S  (watching for a crash after READY)"
    sleep "$SETTLE_S"
    systemctl is-active --quiet edge-agent.service &&
        [[ "$(systemctl show -p ActiveEnterTimestampMonotonic --value edge-agent.service)" == "$since" ]]
}

# Restart on the current release; if it does not come up, go back to $1 (the previous release).
restart_or_roll_back() {
    local previous="$1"
    ((START)) || { note "--no-start: not (re)starting the service"; return 0; }
    if ! real_system; then
        echo "- skipped (--root): systemctl restart edge-agent.service"
        return 0
    fi
    ((DRY_RUN)) && { echo "+ systemctl restart edge-agent.service"; return 0; }
    if run systemctl restart edge-agent.service && stays_up; then
        return 0
    fi
    echo "install.sh: the new release did not start or did not stay up" >&2
    if [[ -n "$previous" ]]; then
        switch_to "$previous"
        run systemctl restart edge-agent.service || true
        die "rolled back to $(basename "$previous"); see journalctl -u edge-agent"
    fi
    die "see journalctl -u edge-agent"
}

# Keep the current release and the newest other one (for a manual roll-back); remove older ones.
prune_releases() {
    local current dirs=() dir
    [[ -d "$RELEASES" && -e "$CURRENT" ]] || return 0
    current="$(realpath "$CURRENT")"
    for dir in "$RELEASES"/*/; do
        dir="${dir%/}"
        [[ "$dir" -ef "$current" ]] || dirs+=("$dir")
    done
    # Names are UTC time stamps: the glob lists them oldest first.
    if ((${#dirs[@]} > 1)); then
        run rm -rf "${dirs[@]:0:${#dirs[@]}-1}"
    fi
}

do_install() {
    local previous="" old_version=""
    check_prerequisites
    ensure_user
    enable_buses
    run install -d -m 0700 "$STATE"
    sys_run chown "$SVC_USER:$SVC_USER" "$STATE"
    install_config
    remember_packages
    if [[ -L "$CURRENT" && -d "$CURRENT" ]]; then
        previous="$(realpath "$CURRENT")"
        old_version="$(installed_version "$CURRENT" || echo unknown)"
        note "installed: $old_version ($previous)"
    fi
    build_release
    # Same version and no package added or dropped: nothing to switch to.
    if [[ -n "$previous" && "${NEW_VERSION:-}" == "$old_version" ]] && ((!FORCE && ${#WITH[@]} + ${#WITHOUT[@]} == 0)); then
        note "version $old_version is already installed: keeping it (--force reinstalls)"
        run rm -rf "$NEW"
        NEW="$previous"
        previous=""
    else
        switch_to "$NEW"
    fi
    save_packages
    install_unit
    restart_or_roll_back "$previous"
    install_panel
    prune_releases
    sys_run systemctl --no-pager --lines=5 status edge-agent.service || true
    note "edge-agent ${NEW_VERSION:-(dry run)} installed; config: $ETC/config.toml; logs: journalctl -u edge-agent -f"
}

do_uninstall() {
    if real_system && ((!DRY_RUN)) && ((EUID != 0)); then die "run as root (sudo)"; fi
    sys_run systemctl disable --now edge-agent.service || true
    if [[ -e "$PANEL_UNIT" ]]; then
        sys_run systemctl disable --now edge-agent-panel.service || true
        run rm -f "$PANEL_UNIT"
    fi
    run rm -rf "$DROPIN_DIR"
    run rm -f "$UNIT"
    sys_run systemctl daemon-reload
    run rm -rf "$APP"
    if ((PURGE)); then
        run rm -rf "$ETC" "$STATE" "$PANEL_ETC"
        if real_system && getent passwd "$PANEL_USER" >/dev/null; then sys_run userdel "$PANEL_USER"; fi
        if real_system && getent passwd "$SVC_USER" >/dev/null; then sys_run userdel "$SVC_USER"; fi
        if real_system && getent group "$SVC_USER" >/dev/null; then sys_run groupdel "$SVC_USER"; fi
        note "edge-agent purged"
    else
        note "edge-agent removed; kept $ETC, $STATE and the user $SVC_USER (--purge removes them)"
    fi
}

main() {
    parse_args "$@"
    set_paths
    ((DRY_RUN)) && note "dry run: printing the steps only"
    real_system || note "installing below $ROOT: system steps are skipped"
    if [[ "$MODE" == uninstall ]]; then do_uninstall; else do_install; fi
}

main "$@"

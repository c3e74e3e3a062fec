# shellcheck shell=bash
# shellcheck disable=SC2153 # ARCH, WORK, PYTHON, PIP_ARGS, SCRIPT_DIR are set by build-wheelhouse.sh
# `build-wheelhouse.sh --arch aarch64|armv7l`: a complete offline wheelhouse for a Raspberry Pi,
# built on an x86_64 Debian 12 machine. Sourced by build-wheelhouse.sh (uses PYTHON, PIP_ARGS,
# ARCH, WORK, SCRIPT_DIR from it).
#
# 1. resolve: pip resolves the requirement natively with platform.machine() reporting the target,
#    so environment markers (RPi.GPIO's `platform_machine == 'aarch64'`) are evaluated for the Pi;
# 2. download: every resolved package as a binary wheel for the target's platform tags (bookworm
#    has glibc 2.36, so manylinux_2_17 ... manylinux_2_36 and linux_<arch>);
# 3. build: what has no such wheel (spidev and RPi.GPIO on arm64; on armhf also numpy, msgpack,
#    msgspec, lgpio) is compiled by pip inside the emulated bookworm root; the results are kept in
#    /var/cache/edge-agent/wheels-<arch>, so a second build compiles nothing;
# 4. check: an offline dry-run install for the target tags from the wheelhouse alone, with no index.

cross_debian_arch() { case "$1" in aarch64) echo arm64 ;; armv7l) echo armhf ;; esac; }

cross_platforms() {
    local a="$1" m
    for m in $(seq 17 36); do echo "--platform=manylinux_2_${m}_$a"; done
    echo "--platform=manylinux2014_$a"
    echo "--platform=linux_$a"
}

# pip with platform.machine() answering the target's name (markers only; wheel tags come from flags).
cross_pip() {
    "$WORK/pip-venv/bin/python" "$WORK/pip-as-target.py" "$ARCH" --disable-pip-version-check --no-input "$@"
}

cross_setup_pip() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
        die "--arch needs a Python 3.11 here, like bookworm's (--python PATH): markers and versions are resolved with it"
    "$PYTHON" -m venv "$WORK/pip-venv"
    cat >"$WORK/pip-as-target.py" <<'EOF'
import platform, runpy, sys
machine = sys.argv.pop(1)
platform.machine = lambda: machine
sys.argv[0] = "pip"
runpy.run_module("pip", run_name="__main__", alter_sys=True)
EOF
}

# name==version of every package the target would install, except edge-agent itself
# (REQ and the --with packages, with every dependency).
cross_resolve() {
    cross_pip install -q --dry-run --ignore-installed --report "$WORK/report.json" "${PIP_ARGS[@]}" "$@" >&2
    "$PYTHON" - "$WORK/report.json" <<'EOF'
import json, sys
for item in json.load(open(sys.argv[1]))["install"]:
    meta = item["metadata"]
    if meta["name"].lower().replace("_", "-") != "edge-agent":
        print(f'{meta["name"]}=={meta["version"]}')
EOF
}

# cross_wheelhouse REQ OUT [WITH...]: WITH are the --with packages (names or wheel files).
cross_wheelhouse() {
    local req="$1" out="$2" debarch suffix="" w
    shift 2
    local platforms=() to_build=()
    debarch="$(cross_debian_arch "$ARCH")"
    mapfile -t platforms < <(cross_platforms "$ARCH")
    local target=("${platforms[@]}" --python-version=3.11 --implementation=cp --abi=cp311 --abi=abi3 --abi=none)
    mkdir -p "$out"
    # A third-party wheel file goes in as it is; the wheelhouse is a find-links source from now on.
    for w in "$@"; do [[ "$w" != *.whl ]] || cp "$w" "$out/"; done
    cross_setup_pip
    echo "==> resolving $req for $ARCH (Python 3.11, glibc 2.36)"
    local pkgs
    pkgs="$(cross_resolve "$req" "$@")"
    echo "==> edge-agent wheel"
    cross_pip wheel -q --no-deps -w "$out" "${PIP_ARGS[@]}" "$req"
    echo "==> binary wheels for $ARCH"
    # One pip call for all; each package pip finds no wheel for is set aside for compiling and the
    # call repeated (one pip start-up per source-only package, not one per package).
    local want=() missing
    read -r -a want <<<"$(echo "$pkgs" | tr '\n' ' ')"
    while ((${#want[@]})); do
        if cross_pip download -q --no-deps --only-binary=:all: "${target[@]}" -d "$out" --find-links "$out" "${PIP_ARGS[@]}" "${want[@]}" \
            >"$WORK/download.log" 2>&1; then
            break
        fi
        missing="$(grep -oE 'No matching distribution found for [^ ]+' "$WORK/download.log" | head -n 1 | awk '{print $NF}')"
        [[ -n "$missing" ]] || { cat "$WORK/download.log" >&2; die "downloading wheels for $ARCH failed"; }
        echo "    $missing: no $ARCH wheel on the index, to be compiled"
        to_build+=("$missing")
        local rest=() p
        for p in "${want[@]}"; do [[ "$p" == "$missing" ]] || rest+=("$p"); done
        ((${#rest[@]} < ${#want[@]})) || die "pip names $missing, which is not among the packages asked for"
        want=(${rest[@]+"${rest[@]}"})
    done
    echo "    $(($(echo "$pkgs" | wc -w) - ${#to_build[@]})) packages as $ARCH wheels"
    if ((${#to_build[@]})); then
        cross_build "$debarch" "$out" "${to_build[@]}"
    fi
    cross_manifest "$out" "$debarch" "${to_build[@]}"
    [[ "$req" =~ (\[[^]]*\]) ]] && suffix="${BASH_REMATCH[1]}"
    local check=("edge-agent$suffix")
    for w in "$@"; do if [[ "$w" == *.whl ]]; then check+=("$out/${w##*/}"); else check+=("$w"); fi; done
    echo "==> checking: offline install of ${check[*]##*/} for $ARCH from the wheelhouse alone"
    mkdir -p "$WORK/check"
    cross_pip install -q --dry-run --ignore-installed --no-index --find-links "$out" --only-binary=:all: \
        "${target[@]}" --target "$WORK/check" "${check[@]}" ||
        die "the wheelhouse is incomplete for $ARCH (see pip's message above)"
}

# Compile sdists for the target inside the emulated root. The wheels are kept in
# $ER_CACHE/wheels-<arch>/ (an sdist on PyPI never changes for a version): a package found there is
# not compiled again, and when all are found no emulated root is started at all.
cross_build() {
    local debarch="$1" out="$2" t0=$SECONDS pkg name version found cached=()
    shift 2
    # shellcheck source=deploy/emulated-root.sh
    source "$SCRIPT_DIR/emulated-root.sh"
    local keep="$ER_CACHE/wheels-$debarch" todo=()
    mkdir -p "$keep"
    for pkg in "$@"; do
        name="$(echo "${pkg%%==*}" | tr 'A-Z.-' 'a-z__')"
        version="${pkg#*==}"
        found="$(find "$keep" -maxdepth 1 -iname "${name}-${version}-*.whl" | head -n 1)"
        if [[ -n "$found" ]]; then cached+=("$found"); else todo+=("$pkg"); fi
    done
    if ((${#cached[@]})); then
        echo "==> compiled before (cache $keep): ${cached[*]##*/}"
        cp "${cached[@]}" "$out/"
    fi
    ((${#todo[@]})) || { cross_toolchain "$debarch" "cached"; return 0; }
    echo "==> compiling ${todo[*]} in an emulated bookworm $debarch root (slow: minutes under emulation)"
    er_session_start "$debarch"
    mkdir -p "$ER_ROOT/wheelhouse-build"
    # `pip wheel` installs nothing, so Debian's PEP 668 guard does not apply: no venv needed.
    # PYPI=1: lgpio's sdist then compiles its bundled C library in statically (else it links a
    # system liblgpio, which Raspberry Pi OS has and Debian does not).
    ER_ENV=(PYPI=1)
    er_run python3 -m pip wheel -q --no-deps --use-pep517 -w /wheelhouse-build "${PIP_ARGS[@]}" "${todo[@]}" ||
        die "compiling ${todo[*]} for $debarch failed"
    ER_ENV=()
    cross_toolchain "$debarch" "session"
    cp "$ER_ROOT"/wheelhouse-build/*.whl "$out/"
    cp "$ER_ROOT"/wheelhouse-build/*.whl "$keep/"
    er_session_end
    echo "    compiled in $((SECONDS - t0)) s"
}

# The compiler, Python and C library the compiled wheels were made with (for the manifest).
cross_toolchain() {
    if [[ "$2" == session ]]; then
        er_run /bin/sh -c 'python3 --version; gcc --version | head -n 1; ldd --version | head -n 1' >"$ER_CACHE/wheels-$1/toolchain.txt"
    fi
    cp "$ER_CACHE/wheels-$1/toolchain.txt" "$WORK/toolchain.txt" 2>/dev/null || echo "(toolchain not recorded)" >"$WORK/toolchain.txt"
}

# manifest.txt: every wheel with its origin and sha256; what was compiled here comes first.
cross_manifest() {
    local out="$1" debarch="$2" w name origin
    shift 2
    {
        echo "# edge-agent wheelhouse for $ARCH (Raspberry Pi OS / Debian 12 bookworm, CPython 3.11)"
        echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m) by deploy/build-wheelhouse.sh --arch $ARCH"
        if (($#)); then
            echo "# compiled from source (no $ARCH wheel on the index) in an emulated bookworm-$debarch root:"
            sed 's/^/#   /' "$WORK/toolchain.txt"
        fi
        echo "# wheel  origin  sha256"
        for w in "$out"/*.whl; do
            name="$(basename "$w")"
            case "$name" in
                edge_agent-*) origin="edge-agent" ;;
                *-linux_"$ARCH".whl) origin="compiled-from-source" ;;
                *) origin="index-wheel" ;;
            esac
            echo "$name $origin $(sha256sum "$w" | cut -d' ' -f1)"
        done >"$WORK/manifest.body"
        grep ' compiled-from-source ' "$WORK/manifest.body" || true
        grep -v ' compiled-from-source ' "$WORK/manifest.body" || true
    } >"$WORK/manifest.txt"
    echo "==> manifest: $(grep -c ' compiled-from-source ' "$WORK/manifest.txt" || true) compiled from source, $(grep -vc '^#' "$WORK/manifest.txt") wheels"
}

#!/usr/bin/env bash
# Installs what building and running the kernel needs, and says what it did.
#
#   - the Rust target aarch64-unknown-none-softfloat and llvm-tools (rustup)
#   - qemu-system-arm 9 or newer (bookworm-backports on Debian 12)
#   - gdb-multiarch (only with --gdb)
#   - the Raspberry Pi 4 device tree, from Debian's arm64 kernel package,
#     into target/dtb/bcm2711-rpi-4-b.dtb
#
# Each step is skipped when its result is already present, so running this
# script on every `make` costs a few milliseconds.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dtb_dir="$top/target/dtb"
rpi4_dtb="$dtb_dir/bcm2711-rpi-4-b.dtb"
want_gdb=0
[ "${1:-}" = "--gdb" ] && want_gdb=1

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root to run: $*"
    fi
}

apt_updated=0
apt_update() {
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        as_root apt-get update -qq >&2
        apt_updated=1
    fi
}

# --- Rust -----------------------------------------------------------------
rust_step() {
    command -v rustup >/dev/null \
        || die "rustup not found; install Rust with rustup first"
    if ! rustup target list --installed | grep -qx aarch64-unknown-none-softfloat; then
        say "adding Rust target aarch64-unknown-none-softfloat"
        rustup target add aarch64-unknown-none-softfloat >&2
    fi
    if ! rustup component list --installed | grep -q '^llvm-tools'; then
        say "adding rustup component llvm-tools"
        rustup component add llvm-tools >&2
    fi
}

# --- QEMU -----------------------------------------------------------------
qemu_major() {
    command -v qemu-system-aarch64 >/dev/null || { echo 0; return; }
    qemu-system-aarch64 --version | head -n1 \
        | sed -E 's/.*version ([0-9]+).*/\1/'
}

# The machine's own Debian mirror, reused for bookworm-backports so that no
# mirror address is written into the repository.
debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        [ -f "$f" ] || continue
        grep -Eo 'https?://[^ ]*/debian/?( |$)' "$f" | head -n1 | tr -d ' '
        return
    done
}

qemu_step() {
    [ "$(qemu_major)" -ge 9 ] && return
    command -v apt-get >/dev/null \
        || die "qemu-system-aarch64 9 or newer is needed and this is not Debian"
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" = bookworm ]; then
        local list=/etc/apt/sources.list.d/bookworm-backports.list
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list \
            /etc/apt/sources.list.d/; then
            local mirror
            mirror=$(debian_mirror)
            [ -n "$mirror" ] || die "cannot find this machine's Debian mirror"
            say "enabling bookworm-backports from $mirror"
            echo "deb $mirror bookworm-backports main" \
                | as_root tee "$list" >/dev/null
            apt_updated=0
        fi
        apt_update
        say "installing qemu-system-arm from bookworm-backports"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -t bookworm-backports qemu-system-arm >&2
    else
        apt_update
        say "installing qemu-system-arm"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            qemu-system-arm >&2
    fi
    [ "$(qemu_major)" -ge 9 ] \
        || die "qemu-system-aarch64 is $(qemu_major).x; 9 or newer is needed"
    say "$(qemu-system-aarch64 --version | head -n1)"
}

# --- Raspberry Pi 4 device tree ---------------------------------------------
# Fetched from Debian's arm64 kernel package without adding arm64 as a
# system architecture: a private APT configuration whose lists live in a
# temporary folder.
dtb_step() {
    [ -s "$rpi4_dtb" ] && return
    command -v apt-get >/dev/null || die "cannot fetch the Pi 4 device tree"
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" \
        "$tmp/etc/preferences.d" "$tmp/etc/apt.conf.d" "$tmp/etc/trusted.gpg.d"
    local sources=""
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        case "$(basename "$f")" in
            debian.sources|sources.list|bookworm-backports.list) ;;
            *) continue ;;
        esac
        mkdir -p "$tmp/etc/sources.list.d"
        cp "$f" "$tmp/etc/sources.list.d/"
    done
    cat >"$tmp/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$tmp/state";
Dir::State::Lists "$tmp/lists";
Dir::State::status "$tmp/status";
Dir::Cache "$tmp/cache";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$tmp/etc/sources.list.d";
Dir::Etc::Preferences "$tmp/etc/preferences";
Dir::Etc::PreferencesParts "$tmp/etc/preferences.d";
Dir::Etc::Parts "$tmp/etc/apt.conf.d";
Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d";
Dir::Etc::Trusted "/etc/apt/trusted.gpg";
CONF
    mkdir -p "$tmp/state"
    : >"$tmp/status"
    say "fetching the Raspberry Pi 4 device tree from Debian's arm64 kernel"
    APT_CONFIG="$tmp/apt.conf" apt-get -o APT::Sandbox::User=root update -qq >&2
    local pkg
    pkg=$(APT_CONFIG="$tmp/apt.conf" apt-cache search --names-only \
        '^linux-image-[0-9.]+-[0-9]+-arm64-unsigned$' | awk '{print $1}' \
        | sort -V | tail -n1)
    [ -n "$pkg" ] || die "no linux-image-*-arm64-unsigned package found"
    (cd "$tmp" && APT_CONFIG="$tmp/apt.conf" apt-get -o APT::Sandbox::User=root download -qq "$pkg" >&2)
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/root"
    local found
    found=$(find "$tmp/root" -name bcm2711-rpi-4-b.dtb | head -n1)
    [ -n "$found" ] || die "$pkg holds no bcm2711-rpi-4-b.dtb"
    mkdir -p "$dtb_dir"
    cp "$found" "$rpi4_dtb"
    say "device tree from $pkg in ${rpi4_dtb#$top/}"
}

gdb_step() {
    command -v gdb-multiarch >/dev/null && return
    apt_update
    say "installing gdb-multiarch"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        gdb-multiarch >&2
}

rust_step
qemu_step
dtb_step
[ "$want_gdb" -eq 1 ] && gdb_step
exit 0

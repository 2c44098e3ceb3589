#!/usr/bin/env bash
# Builds one QEMU command line for a kestrel image, prints it, and runs it.
#
# Usage:
#   scripts/qemu.sh --board virt|rpi4 [--gic 2|3] [--cpus N] [--mem SIZE]
#                   [--icount] [--nodtb] [--gdb] [--append "ARGS"] IMAGE
#
#   --board virt   QEMU virt with a Cortex-A72; --gic (default 3), --cpus
#                  (default 4; at most 8 with GICv2) and --mem (default 512M).
#   --board rpi4   QEMU raspi4b; always 4 CPUs and 2 GiB, so --cpus, --mem
#                  and --gic 3 are refused. Boots with the Pi 4 device tree
#                  from scripts/setup.sh unless --nodtb is given (which tests
#                  the kernel's built-in board table; bootargs then reach the
#                  kernel through the ATAG list at 0x100 only).
#   --icount       deterministic mode: one instruction is one nanosecond, the
#                  guest never sleeps, random seeds are fixed.
#   --gdb          wait for a debugger on TCP port 1234 before the first
#                  instruction.
#   --append ARGS  extra bootargs. The word `semihosting` always comes first:
#                  it tells the kernel that it may exit QEMU with a status
#                  code through semihosting.
#
# The serial console is on stdout; QEMU has no monitor and no display, and a
# guest reset ends QEMU instead of rebooting. The exit status is the
# kernel's semihosting exit code, or QEMU's own when it fails.
#
# Environment: QEMU names the emulator binary (default qemu-system-aarch64).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
rpi4_dtb="$top/target/dtb/bcm2711-rpi-4-b.dtb"
qemu=${QEMU:-qemu-system-aarch64}

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    printf 'qemu.sh: %s\n' "$*" >&2
    exit 2
}

# --- Options ---------------------------------------------------------------
board=""
gic=""
cpus=""
mem=""
icount=0
nodtb=0
gdb=0
append=""
image=""

# Each option that takes a value checks that one follows it.
need_value() {
    [ "$2" -ge 2 ] || die "$1 needs a value"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --board) need_value "$1" $#; board=$2; shift 2 ;;
        --gic) need_value "$1" $#; gic=$2; shift 2 ;;
        --cpus) need_value "$1" $#; cpus=$2; shift 2 ;;
        --mem) need_value "$1" $#; mem=$2; shift 2 ;;
        --append) need_value "$1" $#; append=$2; shift 2 ;;
        --icount) icount=1; shift ;;
        --nodtb) nodtb=1; shift ;;
        --gdb) gdb=1; shift ;;
        -h|--help) usage ;;
        -*) die "unknown option $1" ;;
        *)
            [ -z "$image" ] || die "more than one image given ($image, $1)"
            image=$1
            shift
            ;;
    esac
done

[ -n "$board" ] || usage
[ -n "$image" ] || usage
[ -f "$image" ] || die "no image at $image (run: make build)"

# --- Machine ---------------------------------------------------------------
cmd=("$qemu")
case "$board" in
    virt)
        gic=${gic:-3}
        cpus=${cpus:-4}
        mem=${mem:-512M}
        case "$gic" in 2|3) ;; *) die "--gic must be 2 or 3, not $gic" ;; esac
        [[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "--cpus must be a positive number"
        # A GICv2 has eight CPU interfaces; QEMU refuses more CPUs.
        if [ "$gic" = 2 ] && [ "$cpus" -gt 8 ]; then
            die "GICv2 supports at most 8 CPUs"
        fi
        # virt builds its own device tree; there is nothing to leave out.
        [ "$nodtb" -eq 0 ] || die "--nodtb only applies to --board rpi4"
        cmd+=(-M "virt,gic-version=$gic" -cpu cortex-a72 -smp "$cpus" -m "$mem")
        cmd+=(-kernel "$image")
        ;;
    rpi4)
        # raspi4b fixes the CPU count, memory size and interrupt controller
        # (a GIC-400, which is a GICv2); say so rather than ignore a request.
        [ -z "$cpus" ] || [ "$cpus" = 4 ] || die "raspi4b always has 4 CPUs"
        [ -z "$mem" ] || die "raspi4b always has 2 GiB; --mem is not accepted"
        [ -z "$gic" ] || [ "$gic" = 2 ] || die "raspi4b has a GICv2 (GIC-400)"
        cmd+=(-M raspi4b -kernel "$image")
        if [ "$nodtb" -eq 0 ]; then
            [ -s "$rpi4_dtb" ] \
                || die "no Pi 4 device tree at $rpi4_dtb (run scripts/setup.sh)"
            cmd+=(-dtb "$rpi4_dtb")
        fi
        ;;
    *) die "--board must be virt or rpi4, not $board" ;;
esac

# --- Devices and modes common to both boards ---------------------------------
cmd+=(-display none -serial stdio -monitor none)
cmd+=(-semihosting-config "enable=on,target=native" -no-reboot)
if [ "$icount" -eq 1 ]; then
    # shift=0: one instruction per nanosecond; sleep=off: no waiting for the
    # host clock while the guest idles. Together with a fixed seed the output
    # is the same on every run.
    cmd+=(-icount "shift=0,sleep=off" -seed 1)
fi
if [ "$gdb" -eq 1 ]; then
    # -s: gdb server on TCP port 1234; -S: do not start the CPUs.
    cmd+=(-s -S)
fi
cmd+=(-append "semihosting${append:+ $append}")

# --- Show and run ------------------------------------------------------------
# Quote only the words that need it, so that the printed line can be pasted
# into a shell.
quote() {
    if [[ "$1" =~ ^[A-Za-z0-9_./=,:+@%-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}
{
    printf 'qemu:'
    for word in "${cmd[@]}"; do
        printf ' '
        quote "$word"
    done
    printf '\n'
} >&2

exec "${cmd[@]}"

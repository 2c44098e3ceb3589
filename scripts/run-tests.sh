#!/usr/bin/env bash
# The test driver behind `make test`: host unit tests, then the kernel's own
# tests booted in QEMU in every board configuration, then checks that a
# panic on a secondary CPU and a hung case are reported. Expects the images from `make build`.
#
# Environment:
#   T=WORD          run only the tests whose name contains WORD (host tests get
#                   it as the cargo test filter, the kernel as filter=WORD)
#   CONFIGS="..."   run only these configurations (names below; default all)
#   ICOUNT=1        run QEMU in deterministic icount mode
#   TEST_TIMEOUT=S  host-side limit for one QEMU run, in seconds (default 120)
#
# Configurations: host (cargo test on the host), virt-gicv2-smp{1,2,4},
# virt-gicv3-smp{1,2,4,8}, rpi4, rpi4-nodtb, virt-gicv3-smp4-debug (the
# image with debug assertions: lock order, invariants), and the failure-path checks
# virt-gicv3-smp2-panic and virt-gicv3-smp2-hang. Any
# virt-gicvG-smpN is accepted in CONFIGS.
#
# Test seams (for testing this script without a kernel):
#   QEMU_SH=PATH    stands in for scripts/qemu.sh; gets the same arguments
#   IMAGE_DIR=DIR   where the images are (default target/images)
#   TEST_LOG_DIR=D  where the logs go (default target/test-logs)
#
# Kernel protocol, one item per console line (other lines are ignored, e.g.
# log lines starting with `[`); a test image gets the bootargs
#   test expect_cpus=N [expect_mem=BYTES] [filter=WORD] [skip=K]
# and prints, for every test case selected by the filter, in order:
#   RUN  <name>                 the case starts; it has the next index
#   PASS <name>                 or
#   FAIL <name>: <message>      or
#   SKIP <name>: <reason>       exactly one result per RUN
#   SUMMARY <p> passed, <f> failed, <s> skipped      after the last case
# Case indexes count selected cases from 0; skip=K leaves out the first K
# (they print nothing). Exit codes through semihosting: 0 all passed, 1 some
# failed, 3 the watchdog declared case K hung (after printing `FAIL <name>:
# ...` and `HUNG <K> <name>`); anything else is a crash (`PANIC ...`).
#
# Exit status: 0 when everything passed, 1 when anything failed, crashed or
# did not run, 2 on a usage error.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Decimal points in $EPOCHREALTIME and awk output, whatever the user's locale.
LC_ALL=C

T=${T:-}
CONFIGS=${CONFIGS:-}
ICOUNT=${ICOUNT:-}
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
QEMU_SH=${QEMU_SH:-$top/scripts/qemu.sh}
IMAGE_DIR=${IMAGE_DIR:-target/images}
LOG_DIR=${TEST_LOG_DIR:-target/test-logs}

# The virt runs use a fixed memory size; the kernel checks that it sees it.
virt_mem=512M
virt_mem_bytes=536870912

# Lines of a log shown when a run crashes.
tail_lines=30

# The last line of a finished kernel run.
summary_re='^SUMMARY ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped'

# A configuration that keeps hanging is restarted at most this often.
max_attempts=500

all_configs=(
    host
    virt-gicv2-smp1 virt-gicv2-smp2 virt-gicv2-smp4
    virt-gicv3-smp1 virt-gicv3-smp2 virt-gicv3-smp4 virt-gicv3-smp8
    rpi4 rpi4-nodtb
    virt-gicv3-smp4-debug
    virt-gicv3-smp2-panic virt-gicv3-smp2-hang
)
panic_case=harness::panic_on_secondary_cpu_reports_class
hang_case=harness::hung_case_is_named

usage_error() {
    printf 'run-tests.sh: %s\n' "$*" >&2
    exit 2
}

[[ "$T" =~ ^[^[:space:]]*$ ]] || usage_error "T must be a single word"
[[ "$TEST_TIMEOUT" =~ ^[1-9][0-9]*$ ]] \
    || usage_error "TEST_TIMEOUT must be a number of seconds"
if [ -n "$CONFIGS" ]; then
    read -r -a configs <<<"$CONFIGS"
else
    configs=("${all_configs[@]}")
fi
for cfg in "${configs[@]}"; do
    case "$cfg" in
        host|rpi4|rpi4-nodtb|virt-gicv3-smp2-panic|virt-gicv3-smp2-hang) ;;
        virt-gicv[23]-smp[1-9]|virt-gicv[23]-smp[1-9]*[0-9]) ;;
        virt-gicv[23]-smp[1-9]-debug|virt-gicv[23]-smp[1-9]*[0-9]-debug) ;;
        *) usage_error "unknown configuration '$cfg' (see the top of $0)" ;;
    esac
done

mkdir -p "$LOG_DIR"
attempt_log=$(mktemp)
trap 'rm -f "$attempt_log"' EXIT

# --- Totals ------------------------------------------------------------------
host_pass=0 host_fail=0
kernel_pass=0 kernel_fail=0 kernel_skip=0
kernel_configs=0
broken=()     # "config: why" for each configuration that crashed or did not run
failures=()   # "config: FAIL name: message" for each failed case

now() { printf '%s' "$EPOCHREALTIME"; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Shows the end of a log, indented, after a crash.
show_tail() {
    printf '    last %d lines of %s:\n' "$tail_lines" "$2"
    tail -n "$tail_lines" "$1" | sed 's/^/    | /'
}

# --- Host unit tests -----------------------------------------------------------
run_host() {
    local log="$LOG_DIR/host.log" start rc host counts
    local -a filter=()
    if [ -n "$T" ]; then filter=(-- "$T"); fi
    start=$(now)

    if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
        echo "host: NOT RUN: cargo or rustc not found"
        broken+=("host: not run (no cargo)")
        return
    fi
    host=$(rustc -vV | sed -n 's/^host: //p')

    # The kernel's target is the default in .cargo/config.toml; --target
    # overrides it so that the unit tests build and run on this machine.
    rc=0
    cargo test --target "$host" "${filter[@]}" >"$log" 2>&1 || rc=$?

    # Each test binary (unit tests, doc tests) ends with a line
    #   test result: ok. 12 passed; 0 failed; 0 ignored; ...
    # ("FAILED." instead of "ok." when some failed); add them all up.
    counts=$(awk '/^test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed;/ {
                      p += $4; f += $6 }
                  END { print p + 0, f + 0 }' "$log")
    host_pass=${counts% *}
    host_fail=${counts#* }

    if [ "$rc" -ne 0 ]; then
        echo "host: cargo test failed (exit $rc); its output:"
        sed 's/^/    | /' "$log"
        # Failing tests explain the exit status; otherwise the tests did not
        # build or a test binary crashed, and no count says so.
        [ "$host_fail" -gt 0 ] || broken+=("host: cargo test exited $rc")
    fi

    # libtest prints "test path::name ... FAILED" for each failed test.
    local -a failed
    mapfile -t failed < <(sed -n 's/^test \(.*\) \.\.\. FAILED$/host: FAIL \1/p' "$log")
    if [ ${#failed[@]} -gt 0 ]; then
        printf '%s\n' "${failed[@]}"
        failures+=("${failed[@]}")
    fi
    printf 'host: %d passed, %d failed (%s s)\n' \
        "$host_pass" "$host_fail" "$(seconds_since "$start")"
}

# --- One QEMU run ----------------------------------------------------------------
# run_qemu CONFIG LOG QEMU_SH-ARGS...
# Runs QEMU under the host timeout with its console in $attempt_log, appends
# that to LOG, and prints FAIL lines (prefixed by CONFIG) as they arrive.
# Sets rc (the exit status; 124 or 137 when the host timeout fired).
run_qemu() {
    local cfg=$1 log=$2 echo_failures=${ECHO_FAILURES:-1}
    shift 2
    printf '=== %s: %s %s\n' "$(date '+%F %T')" "${QEMU_SH#"$top"/}" "$*" >>"$log"

    # --foreground keeps QEMU in this process group, so that ^C reaches it;
    # -k: SIGKILL if QEMU ignores the SIGTERM for 10 s. The console may use
    # CR LF line ends.
    set +e
    # FAIL lines are echoed as they come, except in the failure-path
    # checks, where they are the expected output.
    local echo_pattern="s/^FAIL /$cfg: FAIL /p"
    [ "$echo_failures" = 1 ] || echo_pattern=""
    timeout --foreground -k 10 "$TEST_TIMEOUT" "$QEMU_SH" "$@" </dev/null 2>&1 \
        | tee "$attempt_log" \
        | sed -u -n -e 's/\r$//' -e "$echo_pattern"
    rc=${PIPESTATUS[0]}
    set -e

    cat "$attempt_log" >>"$log"
    printf '=== exit status %d\n' "$rc" >>"$log"
}

# --- Reading one attempt's console ----------------------------------------------
# Keeps the first protocol violation of an attempt.
protocol() {
    [ -n "$a_protocol" ] || a_protocol=$1
}

# parse_attempt CONFIG FIRST_INDEX
# Reads $attempt_log and sets:
#   a_pass a_fail a_skip     results seen
#   a_last_index a_last_name the last case that printed RUN (index -1: none)
#   a_pending                1 when that case printed no result
#   a_summary                "p f s" from the SUMMARY line, or empty
#   a_hung_index a_hung_name from the HUNG line (index -1: none)
#   a_protocol               text of the first protocol violation, or empty
# and appends each FAIL to failures.
parse_attempt() {
    local cfg=$1 index=$(($2 - 1)) line word name rest
    a_pass=0 a_fail=0 a_skip=0
    a_last_index=-1 a_last_name="" a_pending=0
    a_summary="" a_hung_index=-1 a_hung_name="" a_protocol=""

    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        # The first word says what the line is; a case name is the second
        # word, without the colon that introduces a message.
        word=${line%% *}
        rest=${line#"$word"}
        rest=${rest#"${rest%%[! ]*}"}
        name=${rest%% *}
        name=${name%:}
        case "$word" in
            RUN)
                [ "$a_pending" -eq 0 ] \
                    || protocol "RUN $name while $a_last_name had no result"
                index=$((index + 1))
                a_last_index=$index a_last_name=$name a_pending=1
                ;;
            PASS|FAIL|SKIP)
                if [ "$a_pending" -eq 1 ] && [ "$name" = "$a_last_name" ]; then
                    a_pending=0
                else
                    protocol "$word $name without a RUN line for it"
                fi
                case "$word" in
                    PASS) a_pass=$((a_pass + 1)) ;;
                    SKIP) a_skip=$((a_skip + 1)) ;;
                    FAIL)
                        a_fail=$((a_fail + 1))
                        failures+=("$cfg: $line")
                        ;;
                esac
                ;;
            SUMMARY)
                if [[ "$line" =~ $summary_re ]]; then
                    a_summary="${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
                else
                    protocol "malformed line: $line"
                fi
                ;;
            HUNG)
                if [[ "$line" =~ ^HUNG\ ([0-9]+)\ (.*)$ ]]; then
                    a_hung_index=${BASH_REMATCH[1]} a_hung_name=${BASH_REMATCH[2]}
                else
                    protocol "malformed line: $line"
                fi
                ;;
        esac
    done <"$attempt_log"
}

# Records a failure that the kernel could not print itself.
host_fail_case() {
    local cfg=$1 name=$2 why=$3
    printf '%s: FAIL %s: %s\n' "$cfg" "$name" "$why"
    failures+=("$cfg: FAIL $name: $why")
    c_fail=$((c_fail + 1))
}

# --- One kernel test configuration -----------------------------------------------
# run_kernel_config CONFIG
# Boots the test image, restarting after each hung case, until a run ends
# with exit status 0 or 1 (or crashes).
run_kernel_config() {
    local cfg=$1 log="$LOG_DIR/$1.log" start image attempt=0 skip=0
    local -a qemu_args bootargs
    local note="" resume=-1 p f s
    c_pass=0 c_fail=0 c_skip=0
    : >"$log"
    start=$(now)
    kernel_configs=$((kernel_configs + 1))

    # 1. The machine and the bootargs the kernel checks it against.
    case "$cfg" in
        rpi4|rpi4-nodtb)
            image="$IMAGE_DIR/rpi4/kernel8.img"
            qemu_args=(--board rpi4)
            [ "$cfg" = rpi4 ] || qemu_args+=(--nodtb)
            bootargs=(test expect_cpus=4)
            ;;
        virt-*)
            local gic=${cfg#virt-gicv} cpus=${cfg##*-smp} flavour=virt
            gic=${gic%%-*}
            # A -debug suffix boots the image with debug assertions.
            if [ "${cpus%-debug}" != "$cpus" ]; then
                cpus=${cpus%-debug}
                flavour=virt-debug
            fi
            image="$IMAGE_DIR/$flavour/kestrel.img"
            qemu_args=(--board virt --gic "$gic" --cpus "$cpus" --mem "$virt_mem")
            bootargs=(test "expect_cpus=$cpus" "expect_mem=$virt_mem_bytes")
            ;;
    esac
    if [ "$ICOUNT" = 1 ]; then qemu_args+=(--icount); fi
    if [ -n "$T" ]; then bootargs+=("filter=$T"); fi

    if [ ! -f "$image" ]; then
        echo "$cfg: NOT RUN: no image at $image (run: make build)"
        broken+=("$cfg: not run (no image)")
        return
    fi

    # 2. Boot, read the console, and decide whether to boot again.
    while :; do
        attempt=$((attempt + 1))
        local args=("${bootargs[@]}")
        if [ "$skip" -gt 0 ]; then args+=("skip=$skip"); fi
        run_qemu "$cfg" "$log" "${qemu_args[@]}" --append "${args[*]}" "$image"
        parse_attempt "$cfg" "$skip"
        c_pass=$((c_pass + a_pass))
        c_fail=$((c_fail + a_fail))
        c_skip=$((c_skip + a_skip))
        resume=-1

        if [ -n "$a_protocol" ]; then
            echo "$cfg: PROTOCOL ERROR: $a_protocol"
            broken+=("$cfg: protocol error: $a_protocol")
        fi

        case "$rc" in
            0|1)
                # A finished run: its SUMMARY must agree with its lines.
                if [ -z "$a_summary" ]; then
                    note="exit $rc without a SUMMARY line"
                elif [ "$a_summary" != "$a_pass $a_fail $a_skip" ]; then
                    read -r p f s <<<"$a_summary"
                    echo "$cfg: PROTOCOL ERROR: SUMMARY says $p passed, $f failed," \
                        "$s skipped; the console shows $a_pass, $a_fail, $a_skip"
                    broken+=("$cfg: SUMMARY disagrees with the result lines")
                elif [ "$rc" -eq 0 ] && [ "$a_fail" -gt 0 ]; then
                    echo "$cfg: PROTOCOL ERROR: exit 0 after $a_fail failures"
                    broken+=("$cfg: exit 0 after failures")
                elif [ "$rc" -eq 1 ] && [ "$a_fail" -eq 0 ]; then
                    echo "$cfg: PROTOCOL ERROR: exit 1 without a FAIL line"
                    broken+=("$cfg: exit 1 without failures")
                fi
                if [ -z "$note" ] && [ "$a_pending" -eq 1 ]; then
                    echo "$cfg: PROTOCOL ERROR: $a_last_name has no result"
                    broken+=("$cfg: $a_last_name has no result")
                    host_fail_case "$cfg" "$a_last_name" "no result before SUMMARY"
                fi
                ;;
            3)
                # The kernel's watchdog gave up on case K and printed its
                # FAIL line; the cases after it still have to run.
                if [ "$a_hung_index" -ge 0 ]; then
                    echo "$cfg: HUNG case $a_hung_index ($a_hung_name), restarting after it"
                    if [ "$a_hung_index" -ne "$a_last_index" ] \
                        || [ "$a_hung_name" != "$a_last_name" ]; then
                        echo "$cfg: PROTOCOL ERROR: HUNG $a_hung_index $a_hung_name," \
                            "but the last RUN was case $a_last_index ($a_last_name)"
                        broken+=("$cfg: HUNG line disagrees with the RUN lines")
                    fi
                    if [ "$a_pending" -eq 1 ] && [ "$a_hung_name" = "$a_last_name" ]; then
                        host_fail_case "$cfg" "$a_last_name" "hung (watchdog)"
                    fi
                    resume=$((a_hung_index + 1))
                elif [ "$a_pending" -eq 1 ]; then
                    echo "$cfg: PROTOCOL ERROR: exit 3 without a HUNG line"
                    broken+=("$cfg: exit 3 without a HUNG line")
                    host_fail_case "$cfg" "$a_last_name" "hung (watchdog)"
                    resume=$((a_last_index + 1))
                else
                    note="exit 3 without a HUNG line, outside any case"
                fi
                ;;
            124|137)
                # The host timeout fired: the case that printed RUN last
                # and no result is hung.
                if [ "$a_pending" -eq 1 ]; then
                    echo "$cfg: no result from case $a_last_index ($a_last_name)" \
                        "within ${TEST_TIMEOUT} s, restarting after it"
                    host_fail_case "$cfg" "$a_last_name" \
                        "hung: no result within the host timeout"
                    resume=$((a_last_index + 1))
                elif [ -n "$a_summary" ]; then
                    note="no exit within ${TEST_TIMEOUT} s after SUMMARY"
                elif [ "$a_last_index" -ge 0 ]; then
                    note="no exit within ${TEST_TIMEOUT} s after case $a_last_index ($a_last_name)"
                else
                    note="no exit within ${TEST_TIMEOUT} s, before any case started"
                fi
                ;;
            *)
                note="exit $rc"
                ;;
        esac

        # A crash ends the configuration; the case it interrupted failed.
        if [ -n "$note" ]; then
            local during=""
            if [ "$a_pending" -eq 1 ]; then
                during=" during case $a_last_index ($a_last_name)"
            fi
            echo "$cfg: CRASHED: ${note}${during}"
            show_tail "$attempt_log" "$log"
            if [ "$a_pending" -eq 1 ]; then
                host_fail_case "$cfg" "$a_last_name" "crashed: $note"
            fi
            broken+=("$cfg: crashed ($note)")
            break
        fi
        [ "$resume" -ge 0 ] || break

        # 3. Resume after the hung case. Each restart moves past at least one
        # case, so this ends; the cap only guards against a kernel that
        # reports nonsense indexes.
        if [ "$resume" -le "$skip" ] || [ "$attempt" -ge "$max_attempts" ]; then
            echo "$cfg: CRASHED: cannot resume at case $resume (attempt $attempt)"
            broken+=("$cfg: restart loop")
            break
        fi
        skip=$resume
    done

    # 4. A configuration that ran nothing tested nothing.
    if [ -z "$T" ] && [ -z "$note" ] && [ $((c_pass + c_fail)) -eq 0 ]; then
        echo "$cfg: no test case ran"
        broken+=("$cfg: no test case ran")
    fi

    kernel_pass=$((kernel_pass + c_pass))
    kernel_fail=$((kernel_fail + c_fail))
    kernel_skip=$((kernel_skip + c_skip))
    local extra=""
    if [ "$attempt" -gt 1 ]; then extra+=" [$attempt runs]"; fi
    if [ -n "$note" ]; then extra+=" [CRASHED]"; fi
    printf '%s: %d passed, %d failed, %d skipped (%s s)%s\n' "$cfg" \
        "$c_pass" "$c_fail" "$c_skip" "$(seconds_since "$start")" "$extra"
}

# --- Checks of the failure paths ------------------------------------------------
# Each boots the virt image with two CPUs and boot arguments that make the
# kernel fail on purpose, and passes when the run ends with the expected
# exit code and the console says the expected words:
# - panic_test: CPU 1 takes a data abort (exception class 0x25) that nothing
#   catches; the panic report must name the CPU and the class, and the run
#   must exit non-zero.
# - hang_test: the harness runs one case that never returns; the watchdog
#   must name it and end the run with exit code 3.
run_expect_config() {
    local cfg=$1 case_name=$2 append=$3 want_rc=$4
    shift 4
    local log="$LOG_DIR/$cfg.log" start image="$IMAGE_DIR/virt/kestrel.img"
    local -a qemu_args=(--board virt --gic 3 --cpus 2 --mem "$virt_mem")
    local why="" word

    if [ -n "$T" ] && [[ "$case_name" != *"$T"* ]]; then
        return
    fi
    : >"$log"
    start=$(now)
    kernel_configs=$((kernel_configs + 1))
    if [ ! -f "$image" ]; then
        echo "$cfg: NOT RUN: no image at $image (run: make build)"
        broken+=("$cfg: not run (no image)")
        return
    fi
    if [ "$ICOUNT" = 1 ]; then qemu_args+=(--icount); fi

    ECHO_FAILURES=0 run_qemu "$cfg" "$log" "${qemu_args[@]}" --append "$append" "$image"
    case "$rc" in
        124|137) why="no exit within ${TEST_TIMEOUT} s" ;;
        *)
            if [ "$want_rc" = nonzero ] && [ "$rc" -eq 0 ]; then
                why="exit 0; expected a failing exit code"
            elif [ "$want_rc" != nonzero ] && [ "$rc" -ne "$want_rc" ]; then
                why="exit $rc; expected $want_rc"
            fi
            ;;
    esac
    if [ -z "$why" ]; then
        for word in "$@"; do
            if ! grep -q -F -- "$word" "$attempt_log"; then
                why="exit $rc, but the console does not say '$word'"
                break
            fi
        done
    fi

    if [ -z "$why" ]; then
        kernel_pass=$((kernel_pass + 1))
        printf '%s: 1 passed, 0 failed, 0 skipped (%s s)\n' "$cfg" "$(seconds_since "$start")"
    else
        kernel_fail=$((kernel_fail + 1))
        printf '%s: FAIL %s: %s\n' "$cfg" "$case_name" "$why"
        failures+=("$cfg: FAIL $case_name: $why")
        show_tail "$attempt_log" "$log"
        printf '%s: 0 passed, 1 failed, 0 skipped (%s s)\n' "$cfg" "$(seconds_since "$start")"
    fi
}

run_panic_config() {
    run_expect_config "$1" "$panic_case" panic_test nonzero PANIC cpu1 EC=0x25
}

run_hang_config() {
    run_expect_config "$1" "$hang_case" "test hang_test case_timeout_ms=300" 3 \
        "RUN  $hang_case" "FAIL $hang_case: hung" "HUNG 0 $hang_case"
}

# --- Main --------------------------------------------------------------------------
if [ "$QEMU_SH" = "$top/scripts/qemu.sh" ] \
    && ! command -v "${QEMU:-qemu-system-aarch64}" >/dev/null; then
    echo "QEMU (${QEMU:-qemu-system-aarch64}) is not installed: run scripts/setup.sh"
    qemu_missing=1
else
    qemu_missing=0
fi

for cfg in "${configs[@]}"; do
    case "$cfg" in
        host) run_host ;;
        *)
            if [ "$qemu_missing" -eq 1 ]; then
                echo "$cfg: NOT RUN: no QEMU"
                broken+=("$cfg: not run (no QEMU)")
            elif [ "$cfg" = virt-gicv3-smp2-panic ]; then
                run_panic_config "$cfg"
            elif [ "$cfg" = virt-gicv3-smp2-hang ]; then
                run_hang_config "$cfg"
            else
                run_kernel_config "$cfg"
            fi
            ;;
    esac
done

echo
echo "== totals"
if [ ${#failures[@]} -gt 0 ]; then
    echo "failed:"
    printf '  %s\n' "${failures[@]}"
fi
if [ ${#broken[@]} -gt 0 ]; then
    echo "crashed, not run or broken protocol:"
    printf '  %s\n' "${broken[@]}"
fi
printf 'host unit tests: %d passed, %d failed\n' "$host_pass" "$host_fail"
printf 'kernel tests (%d configurations): %d passed, %d failed, %d skipped\n' \
    "$kernel_configs" "$kernel_pass" "$kernel_fail" "$kernel_skip"
total_pass=$((host_pass + kernel_pass))
total_fail=$((host_fail + kernel_fail))
if [ "$kernel_skip" -gt 0 ]; then
    printf '%d passed, %d failed, %d skipped\n' "$total_pass" "$total_fail" "$kernel_skip"
else
    printf '%d passed, %d failed\n' "$total_pass" "$total_fail"
fi

[ "$total_fail" -eq 0 ] && [ ${#broken[@]} -eq 0 ]

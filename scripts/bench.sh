#!/usr/bin/env bash
# The benchmarks behind `make bench`: boots the virt image with the boot
# argument `bench` under `-icount shift=0,sleep=off -seed 1` (one virtual
# nanosecond per instruction, figures that repeat exactly) at 1 and at 4
# CPUs, prints a table, and writes target/bench/results.json: one object
# mapping each metric to virtual nanoseconds per operation.
#
# The kernel prints `BENCH <name> <ns>` per figure (src/bench.rs). Figures
# that depend on the CPU count get a `_cpu<N>` suffix here.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
image=target/images/virt/kestrel.img
out=target/bench
mkdir -p "$out"
[ -f "$image" ] || { echo "bench: no image at $image (run: make build)" >&2; exit 1; }

# Which run supplies each metric, and the targets of the scheduler issue.
#   name                      cpus  kernel name          target (ns)
metrics=(
    "yield_switch             1     yield_switch         300"
    "wakeup_cross_cpu         4     wakeup_cross_cpu     2000"
    "thread_spawn_join_cpu1   1     thread_spawn_join    2000"
    "thread_spawn_join_cpu4   4     thread_spawn_join    -"
)

declare -A figure
for cpus in 1 4; do
    log="$out/bench-smp$cpus.log"
    set +e
    timeout 600 scripts/qemu.sh --board virt --gic 3 --cpus "$cpus" --icount \
        --append bench "$image" >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        echo "bench: the $cpus-CPU run failed (exit $rc); last lines of $log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    while read -r word name ns; do
        [ "$word" = BENCH ] && figure["$cpus:$name"]=${ns%$'\r'}
    done < <(tr -d '\r' <"$log")
done

printf '%-24s %12s %12s\n' metric "ns/op" target
json="{"
separator=""
for line in "${metrics[@]}"; do
    read -r name cpus kernel_name target <<<"$line"
    value=${figure["$cpus:$kernel_name"]:-}
    if [ -z "$value" ]; then
        echo "bench: the $cpus-CPU run printed no figure for $kernel_name" >&2
        exit 1
    fi
    if [ "$name" = thread_spawn_join_cpu4 ]; then
        # Within 1.5 times the 1-CPU figure.
        target=$(( ${figure["1:thread_spawn_join"]} * 3 / 2 ))
    fi
    printf '%-24s %12s %12s\n' "$name" "$value" "< $target"
    json+="$separator\"$name\": $value"
    separator=", "
done
json+="}"
echo "$json" >"$out/results.json"
ratio=$(awk -v a="${figure["4:thread_spawn_join"]}" -v b="${figure["1:thread_spawn_join"]}" \
    'BEGIN { printf "%.2f", a / b }')
echo "spawn+join at 4 CPUs / at 1 CPU: $ratio"
echo "written: $out/results.json"

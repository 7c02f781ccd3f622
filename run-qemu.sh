#!/usr/bin/env bash
# Build the kernel and boot it under QEMU q35 with an Intel IOMMU.
#
# Exit status: 0 pass, 1 fail, 2 usage or set-up error, 3 timeout.
# Run ./run-qemu.sh --help for the options.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
scenario="$here/scenarios/default.qemu"
append=""
mode=text          # text | json | groups
gdb=0
print_cmd=0
iommu=1
iommu_opts=""
timeout_s=${RUN_QEMU_TIMEOUT:-120}
extra=()

usage() {
    cat <<'USAGE'
usage: ./run-qemu.sh [options] [-- extra QEMU arguments]

  --scenario FILE   QEMU argument lines (-device ..., -machine OPTS; # comments) replacing scenarios/default.qemu
  --append "ARGS"   kernel command line (log=debug, test=panic, assign=BDF,...)
  --json            only the JSON report on stdout
  --groups          only the canonical IOMMU group list on stdout
  --iommu "OPTS"    extra intel-iommu options, e.g. aw-bits=48 or caching-mode=off
  --no-iommu        boot without an IOMMU
  --gdb             wait for gdb on :1234 (no timeout)
  --timeout SECS    host-side limit (default 120, or $RUN_QEMU_TIMEOUT)
  --print-cmd       print the QEMU command, one argument a line, and exit
                    (for benchmarks that time QEMU alone)
  -- ARGS           passed to QEMU verbatim (e.g. -- -trace vtd_dmar_fault)

exit status: 0 pass, 1 fail, 2 usage or set-up error, 3 timeout
USAGE
}

while [ $# -gt 0 ]; do
    case "$1" in
        --scenario) [ $# -ge 2 ] || { usage >&2; exit 2; }; scenario=$2; shift 2 ;;
        --append) [ $# -ge 2 ] || { usage >&2; exit 2; }; append=$2; shift 2 ;;
        --json) mode=json; shift ;;
        --groups) mode=groups; shift ;;
        --iommu) [ $# -ge 2 ] || { usage >&2; exit 2; }; iommu_opts=$2; shift 2 ;;
        --no-iommu) iommu=0; shift ;;
        --gdb) gdb=1; shift ;;
        --print-cmd) print_cmd=1; shift ;;
        --timeout) [ $# -ge 2 ] || { usage >&2; exit 2; }; timeout_s=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "run-qemu.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

# The scenario is resolved against the caller's directory, before the cd
# below: a relative path must name the caller's file, and a missing,
# unreadable or non-regular one is a usage error, never an empty machine.
if [ ! -f "$scenario" ] || [ ! -r "$scenario" ]; then
    echo "run-qemu.sh: cannot read scenario $scenario (not a readable file)" >&2
    exit 2
fi
scenario=$(realpath -- "$scenario")
# A relative `file=` path in a scenario (e.g. `-acpitable file=x.aml`) is
# relative to the scenario's own directory.
scenario_dir=$(dirname -- "$scenario")

# Set-up a fresh Debian 12 machine needs: QEMU and the Rust target. Tests
# run several copies of this script at once, so set-up and build hold a lock.
setup() {
    if ! command -v qemu-system-x86_64 >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "run-qemu.sh: installing qemu-system-x86" >&2
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86) >&2 ||
                { echo "run-qemu.sh: apt-get install qemu-system-x86 failed" >&2; return 2; }
        else
            echo "run-qemu.sh: qemu-system-x86_64 is missing; install it with:" >&2
            echo "    sudo apt-get install qemu-system-x86" >&2
            return 2
        fi
    fi
    if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-none; then
        rustup toolchain install >&2 || { echo "run-qemu.sh: rustup toolchain install failed" >&2; return 2; }
    fi
    cargo build --quiet --release -p kernel --target x86_64-unknown-none >&2 ||
        { echo "run-qemu.sh: kernel build failed" >&2; return 2; }
    cargo build --quiet --release -p qmp-runner >&2 ||
        { echo "run-qemu.sh: qmp-runner build failed" >&2; return 2; }
}
cd "$here"
mkdir -p target
exec 9>target/.run-qemu.lock
flock 9
setup || exit 2
flock -u 9
kernel="$here/target/x86_64-unknown-none/release/kernel"
qmp_runner="$here/target/release/qmp-runner"

# Scenario: whitespace-separated QEMU arguments, '#' comments.
scenario_text=$(cat -- "$scenario") || { echo "run-qemu.sh: cannot read scenario $scenario" >&2; exit 2; }
mapfile -t devices < <(printf '%s\n' "$scenario_text" | sed -e 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' |
    sed -E "s#(^|,)file=([^/,][^,]*)#\1file=$scenario_dir/\2#g")

# SeaBIOS writes escape codes and "Booting from ROM.." to the serial port
# unless its console port is set to 0. The file stays in target/ so that a
# printed command (--print-cmd) runs as it is.
sercon="$here/target/sercon"
[ -s "$sercon" ] || printf '\0\0' > "$sercon"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmdline="report=$mode"
[ -n "$append" ] && cmdline="$cmdline $append"

# QMP: the kernel's requests (QMP-REQUEST lines on serial) are performed by
# qmp-runner, which also passes the serial through.
qemu=(qemu-system-x86_64 -machine q35,kernel-irqchip=split -m 256M -smp 1
      -nographic -nodefaults -no-reboot -serial stdio
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -fw_cfg name=etc/sercon-port,file="$sercon"
      -kernel "$kernel" -append "$cmdline")
if [ "$iommu" = 1 ]; then
    qemu+=(-device "intel-iommu,intremap=on,caching-mode=on${iommu_opts:+,$iommu_opts}")
fi
qemu+=("${devices[@]}" "${extra[@]}")

if [ "$print_cmd" = 1 ]; then
    # Printed without the QMP socket, which lives in a directory removed on
    # exit (nothing answers requests then: benchmarks run with demos=off).
    printf '%s\n' "${qemu[@]}"
    exit 0
fi

qemu+=(-qmp "unix:$tmp/qmp.sock,server=on,wait=off")

runner=(timeout --foreground -k 5 "$timeout_s")
if [ "$gdb" = 1 ]; then
    runner=()
    qemu+=(-s -S)
    echo "run-qemu.sh: waiting for gdb; attach with:" >&2
    echo "    gdb $kernel -ex 'target remote :1234'" >&2
fi

# Serial output: firmware escape codes and carriage returns stripped, then
# through qmp-runner (QMP requests performed, QEMU's replies and events
# on stderr as "qmp: ..." lines).
clean() { sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\r//g' | "$qmp_runner" "$tmp/qmp.sock"; }

set +e
if [ "$mode" = text ]; then
    "${runner[@]}" "${qemu[@]}" 2> >(grep -v -e 'fw_cfg item names should be prefixed' -e 'has no peer' >&2) | clean
    status=${PIPESTATUS[0]}
else
    "${runner[@]}" "${qemu[@]}" 2> >(grep -v -e 'fw_cfg item names should be prefixed' -e 'has no peer' >&2) | clean > "$tmp/out"
    status=${PIPESTATUS[0]}
    # The report between its markers goes to stdout, everything else to stderr.
    awk -v out="$tmp/report" '
        /^==== REPORT BEGIN/ { inside = 1; next }
        /^==== REPORT END ====/ { inside = 0; next }
        inside { print > out; next }
        { print > "/dev/stderr" }' "$tmp/out"
    [ -f "$tmp/report" ] && cat "$tmp/report"
fi
set -e

case "$status" in
    33) exit 0 ;;
    35) echo "run-qemu.sh: the kernel reported failure" >&2; exit 1 ;;
    124|137) echo "run-qemu.sh: timeout: QEMU still running after ${timeout_s} s; stopped" >&2; exit 3 ;;
    *) echo "run-qemu.sh: QEMU exited with status $status without the kernel's exit protocol" >&2; exit 1 ;;
esac

#!/usr/bin/env bash
# Benchmarks of the kernel: boot time against the floor and Linux, phases,
# scale, host micro-benchmarks. Prints figures; asserts no timing.
#   bench/run.sh [--runs N] [--quick] [--oracle DIR] [--no-linux] [--no-scale] [--no-micro]
#   ORACLE_DIR=/path/to/oracle bench/run.sh
# See bench/README.md.
exec python3 "$(dirname "$0")/run.py" "$@"

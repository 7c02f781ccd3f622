"""bench/run.sh section 5: iommu-explain on a 320-function machine.

The input is `fixtures/large.linux-6.1.lspci` (40 functions, real QEMU config
bytes and Linux's IOMMU group lines) repeated in PCI domains 0000-0007. Timed,
median of N runs of the whole process (read, enumerate, group, explain, print):

- iommu-explain --lspci DUMP (the default explanation), --groups, --json, --check;
- lspci -vvnn -F DUMP: pciutils decoding the same dump (no grouping at all);
- iommu-explain --sysfs TREE on a fake sysfs tree holding the same config bytes
  and groups;
- the Arch wiki's shell loop over TREE/sys/kernel/iommu_groups, calling
  `lspci -nns` once per device (with -F DUMP, so it reads the same input).
Prints figures; asserts nothing.
"""

import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "fixtures/large.linux-6.1.lspci")
TOOL = os.path.join(ROOT, "target/release/iommu-explain")

WIKI_LOOP = r'''
shopt -s nullglob
for g in $(find "$ROOT/sys/kernel/iommu_groups"/* -maxdepth 0 -type d | sort -V); do
    echo "IOMMU Group ${g##*/}:"
    for d in $g/devices/*; do
        echo -e "\t$(lspci -F "$DUMP" -nns ${d##*/})"
    done;
done;
'''


def machine(copies):
    """The dump text and, per function, (bdf, config bytes, group)."""
    text = open(FIXTURE).read()
    out, funcs = [], []
    for seg in range(copies):
        cur = None
        for line in text.split("\n"):
            m = re.match(r"^([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) (.*)$", line)
            if m:
                line = "%04x:%s %s" % (seg, m.group(1), m.group(2))
                cur = ["%04x:%s" % (seg, m.group(1)), bytearray(), None]
                funcs.append(cur)
            elif cur and re.match(r"^[0-9a-f]{2,3}: ", line):
                cur[1].extend(bytes.fromhex(line.split(":", 1)[1]))
            elif cur and line.startswith("\tIOMMU group: "):
                # Group ids are machine-wide: each copy's follow the last's.
                cur[2] = 100 * seg + int(line.split(":")[1])
                line = "\tIOMMU group: %d" % cur[2]
            out.append(line)
    return "\n".join(out), funcs


def fake_sysfs(root, funcs):
    for bdf, config, group in funcs:
        d = os.path.join(root, "sys/bus/pci/devices", bdf)
        os.makedirs(d)
        open(os.path.join(d, "config"), "wb").write(config)
        g = os.path.join(root, "sys/kernel/iommu_groups", str(group), "devices")
        os.makedirs(g, exist_ok=True)
        open(os.path.join(g, bdf), "w").close()
    os.makedirs(os.path.join(root, "proc/sys/kernel"))
    open(os.path.join(root, "proc/sys/kernel/osrelease"), "w").write("6.1.0-56-amd64\n")
    open(os.path.join(root, "proc/cmdline"), "w").write("intel_iommu=on\n")


def timed(argv, runs, env=None):
    """Median wall time (min, max), median CPU time (user + system of the
    child, which load from other processes does not inflate) and status."""
    times, cpu, status = [], [], None
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        status = p.returncode
    return statistics.median(times), min(times), max(times), statistics.median(cpu), status


def run(runs):
    print("== 5. iommu-explain: a 320-function machine read and explained ==")
    b = subprocess.run(["cargo", "build", "--release", "-q", "-p", "explain"], cwd=ROOT)
    if b.returncode != 0:
        print("  SKIPPED: cargo build --release -p explain failed")
        return
    runs = max(runs, 5)
    tmp = tempfile.mkdtemp(prefix="iommu-explain-bench-")
    try:
        text, funcs = machine(8)
        dump = os.path.join(tmp, "machine.lspci")
        open(dump, "w").write(text)
        tree = os.path.join(tmp, "tree")
        fake_sysfs(tree, funcs)
        print(f"  input: {len(funcs)} functions (fixtures/large x 8 domains), {len(text) // 1024} KiB of "
              f"lspci -vvnnxxxx; {len({f[2] for f in funcs})} groups in the input; {runs} runs, median (min-max)")
        rows = [
            ("iommu-explain --lspci DUMP", [TOOL, "--lspci", dump]),
            ("iommu-explain --lspci DUMP --groups", [TOOL, "--lspci", dump, "--groups"]),
            ("iommu-explain --lspci DUMP --json", [TOOL, "--lspci", dump, "--json"]),
            ("iommu-explain --lspci DUMP --check", [TOOL, "--lspci", dump, "--check"]),
            ("iommu-explain --sysfs TREE", [TOOL, "--sysfs", tree]),
        ]
        lspci = shutil.which("lspci")
        if lspci:
            rows.append(("lspci -vvnn -F DUMP (decode only, no groups)", [lspci, "-vvnn", "-F", dump]))
        results = {}
        for name, argv in rows:
            med, lo, hi, cpu, status = timed(argv, runs)
            results[name] = med
            print(f"  {name:<48} {med * 1000:8.2f} ms ({lo * 1000:.2f}-{hi * 1000:.2f}), cpu {cpu * 1000:6.2f} ms"
                  f"  status {status}")
        if lspci:
            env = dict(os.environ, ROOT=tree, DUMP=dump)
            med, lo, hi, cpu, status = timed(["bash", "-c", WIKI_LOOP], max(1, runs // 2), env)
            results["wiki"] = med
            print(f"  {'wiki shell loop over TREE/sys/kernel/iommu_groups':<48} {med * 1000:8.2f} ms "
                  f"({lo * 1000:.2f}-{hi * 1000:.2f}), cpu {cpu * 1000:6.0f} ms  status {status}")
            tool = results["iommu-explain --lspci DUMP"]
            print(f"  iommu-explain / lspci -vvnn: {tool / results[rows[-1][0]]:.2f}; "
                  f"wiki loop / iommu-explain: {results['wiki'] / tool:.0f}x")
        else:
            print("  lspci not installed (apt-get install pciutils): the lspci and wiki-loop rows are SKIPPED")
        print("  target: a 300-function machine read and explained in under 20 ms (whole process, wall time;")
        print("  cpu = user + system time of the process, which other engineers' load does not inflate)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()

#!/usr/bin/env python3
"""Generate the scale topologies of bench/topologies/ (QEMU -device lines).

    python3 bench/gen-topologies.py            # writes bench/topologies/scale-*.qemu

One *unit* of hardware is repeated L = 1, 2, 4 times, so every size has the
same mix and the per-function phase costs are comparable:

  - 2 multifunction edu slots on the root bus (8 functions each);
  - an ACS root port with a switch of 8 downstream ports (fan-out), each with
    a 2-function edu;
  - a bridge chain: root port -> pcie-pci-bridge -> pci-bridge -> pci-bridge,
    a 2-function edu on each conventional bus;
  - a pxb-pcie expander (its own root bus, bus_nr 0x80 + 0x10 * i) with two
    root ports, each with a 2-function edu.

59 functions a unit, plus the 4 q35 functions always present (00:00.0,
00:1f.0/2/3): 63, 122 and 240 functions. Constraints (see the project's
boot-and-qemu-facts notes): at most 14 bridges that need an I/O window
(pcie-pci-bridge and pci-bridge always take one: 3 per unit, 12 at L = 4);
edu has no I/O BAR, so ports with only edu below take none; unique
(chassis, slot) per PCIe port; device 0 only below ports; multifunction=on on
function 0; only full-line comments (the Linux oracle's run-scenario.sh strips
only those).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "topologies")
BASE_FUNCTIONS = 4  # q35: host bridge, ICH9 LPC, AHCI, SMBus


def edu_mf(lines, bus, slot, nfn):
    for f in range(nfn):
        mf = ",multifunction=on" if f == 0 and nfn > 1 else ""
        lines.append(f"-device edu,bus={bus},addr={slot:x}.{f}{mf}")
    return nfn


def generate(units):
    lines = [
        f"# Scale topology: the unit of bench/gen-topologies.py repeated {units} time(s).",
        "# Generated; do not edit (python3 bench/gen-topologies.py).",
    ]
    n = BASE_FUNCTIONS
    slot = 2          # next free device number on pcie.0
    chassis = 1       # next free chassis for root ports
    for u in range(units):
        lines.append(f"# unit {u}: root-bus multifunction slots")
        for _ in range(2):
            n += edu_mf(lines, "pcie.0", slot, 8)
            slot += 1
        lines.append(f"# unit {u}: switch fan-out (8 downstream ports)")
        lines.append(f"-device pcie-root-port,id=srp{u},bus=pcie.0,chassis={chassis},addr={slot:x}.0")
        chassis += 1
        slot += 1
        lines.append(f"-device x3130-upstream,id=up{u},bus=srp{u}")
        n += 2
        for d in range(8):
            lines.append(
                f"-device xio3130-downstream,id=dp{u}_{d},bus=up{u},chassis={100 + u},slot={d}"
            )
            n += 1
            n += edu_mf(lines, f"dp{u}_{d}", 0, 2)
        lines.append(f"# unit {u}: bridge chain (PCIe-to-PCI bridge, two PCI bridges)")
        lines.append(f"-device pcie-root-port,id=crp{u},bus=pcie.0,chassis={chassis},addr={slot:x}.0")
        chassis += 1
        slot += 1
        lines.append(f"-device pcie-pci-bridge,id=cpb{u},bus=crp{u}")
        n += 2
        n += edu_mf(lines, f"cpb{u}", 1, 2)
        prev = f"cpb{u}"
        for k in range(2):
            lines.append(
                f"-device pci-bridge,id=cb{u}_{k},bus={prev},addr=2.0,chassis_nr={10 * (u + 1) + k}"
            )
            n += 1
            n += edu_mf(lines, f"cb{u}_{k}", 1, 2)
            prev = f"cb{u}_{k}"
        lines.append(f"# unit {u}: expander bus 0x{0x80 + 0x10 * u:x} with two root ports")
        lines.append(
            f"-device pxb-pcie,id=pxb{u},bus_nr=0x{0x80 + 0x10 * u:x},bus=pcie.0,addr={slot:x}.0"
        )
        slot += 1
        n += 1
        for r in range(2):
            lines.append(
                f"-device pcie-root-port,id=xrp{u}_{r},bus=pxb{u},chassis={chassis},addr={r}.0"
            )
            chassis += 1
            n += 1
            n += edu_mf(lines, f"xrp{u}_{r}", 0, 2)
    assert slot < 0x1f, "root bus full"
    assert 3 * units <= 14, "too many I/O windows for SeaBIOS"
    return n, lines


def main():
    os.makedirs(OUT, exist_ok=True)
    for units in (1, 2, 4):
        n, lines = generate(units)
        path = os.path.join(OUT, f"scale-{n}.qemu")
        lines.insert(2, f"# {n} PCI functions.")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"{path}: {n} functions")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Split a callgrind dump of the server Envoy by where the code lives.

    python3 bench/callgrind_split.py DUMP [DUMP ...]

The dumps are the ones `bench/run.sh --callgrind --callgrind-keep DIR` keeps
(VARIANT-MODE-N.callgrind). Envoy's binary is stripped and the Wasm code is
compiled by V8 at run time, so callgrind names neither's functions; it can
still tell them apart by mapping:

- envoy: code in Envoy's binary (the HTTP path, the host side of every call);
- unnamed: code callgrind cannot place in any file, at low addresses (code
  Envoy or V8 copies out of the binary: the calls into and out of the VM go
  through it);
- wasm: code at the high addresses of V8's code space, i.e. the filter's own
  Wasm, JIT-compiled;
- libc: the C library (memset, memcpy, malloc of the host side).

Prints each dump's share of its instructions per kind; multiply by the
row's instructions per request (bench/instructions.md) for the split per
request.
"""

import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+(.*)$")
ADDRESS = re.compile(r"0x([0-9a-f]+)")
# V8 places its JIT code far above the binary and the heap.
JIT_ABOVE = 1 << 32


def kind(where):
    if "libc" in where:
        return "libc"
    if "[???]" in where:
        address = ADDRESS.search(where)
        if address and int(address.group(1), 16) >= JIT_ABOVE:
            return "wasm"
        return "unnamed"
    if "/envoy]" in where:
        return "envoy"
    return "other"


def split(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True).stdout.decode("utf-8", "replace")
    total, kinds = 0, {}
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in m.group(2):
            total = ir
            continue
        k = kind(m.group(2))
        kinds[k] = kinds.get(k, 0) + ir
    return total, kinds


def main(paths):
    if not paths:
        sys.exit(__doc__)
    names = ("envoy", "unnamed", "wasm", "libc", "other")
    print("| dump | " + " | ".join(names) + " |")
    print("|---|" + "--:|" * len(names))
    for path in paths:
        total, kinds = split(path)
        shares = ["%.1f%%" % (100.0 * kinds.get(n, 0) / total) if total else "n/a" for n in names]
        print("| %s | %s |" % (path.rsplit("/", 1)[-1], " | ".join(shares)))


if __name__ == "__main__":
    main(sys.argv[1:])

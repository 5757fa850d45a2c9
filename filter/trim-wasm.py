#!/usr/bin/env python3
"""Drop the per-request callbacks the filter does not implement from a .wasm's exports.

The proxy-wasm Rust SDK exports every callback of the ABI, and Envoy calls
each exported one whenever its event happens: for every request
on_response_headers, on_log and on_done besides the on_request_headers the
filter needs, and the body and trailer callbacks when there are some; each a
call from Envoy into the VM (a few thousand instructions apiece:
bench/README.md). Envoy skips a callback the module does
not export, so removing these exports is the same as the SDK's do-nothing
defaults, without the calls.

Only exports are removed (the functions stay in the code section, unused);
every other section is copied byte for byte. The list below must only name
callbacks that `filter/src/wasm.rs` leaves to the SDK's defaults: implement
one there, and take it off this list.

    python3 filter/trim-wasm.py FILE.wasm          # rewrite FILE.wasm in place
    python3 filter/trim-wasm.py IN.wasm OUT.wasm

Python stdlib only. Idempotent: a trimmed module is left as it is.
"""

import os
import sys

# Callbacks the filter does not implement, for HTTP streams or (on_log,
# on_done) for its root contexts either. Kept on purpose:
# proxy_on_context_create and proxy_on_request_headers (the filter's work),
# proxy_on_request_body and proxy_on_request_trailers (reading the body of a
# POST held for a method-override check; removing client copies of the
# filter's headers from trailers), proxy_on_delete (the SDK frees
# the stream's context there, and a root context's drop flushes the summed
# counters) and proxy_on_tick (the root context's flush tick).
UNUSED_CALLBACKS = (
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_log",
    "proxy_on_done",
)
# What must still be there afterwards, or Envoy cannot run the filter at all.
REQUIRED = ("proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create",
            "proxy_on_configure", "proxy_on_request_headers", "proxy_on_request_body",
            "proxy_on_request_trailers", "proxy_on_delete", "_initialize", "memory",
            # The root context's tick hands the summed counters to Envoy (filter/src/pending.rs).
            "proxy_on_tick",
            # L4 mode (filter/src/network.rs): the network filter's callbacks.
            "proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data")

EXPORT_SECTION = 7


class WasmError(Exception):
    pass


def read_leb(data, i):
    """An unsigned LEB128 at data[i:]; returns (value, next index)."""
    value, shift = 0, 0
    while True:
        if i >= len(data) or shift >= 35:
            raise WasmError("truncated or oversized LEB128 at byte %d" % i)
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def write_leb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sections(data):
    """(id, start of content, end of content) for each section."""
    if data[:4] != b"\0asm" or data[4:8] != b"\x01\0\0\0":
        raise WasmError("not a WebAssembly 1.0 binary module")
    i = 8
    while i < len(data):
        sid = data[i]
        size, start = read_leb(data, i + 1)
        end = start + size
        if end > len(data):
            raise WasmError("section %d runs past the end of the file" % sid)
        yield sid, i, start, end
        i = end


def parse_exports(content):
    """[(name, raw entry bytes)] of an export section's content."""
    count, i = read_leb(content, 0)
    entries = []
    for _ in range(count):
        begin = i
        name_len, i = read_leb(content, i)
        name = content[i:i + name_len].decode("utf-8")
        i += name_len + 1  # the name, then the kind byte
        _, i = read_leb(content, i)  # the index
        entries.append((name, content[begin:i]))
    if i != len(content):
        raise WasmError("export section has %d trailing bytes" % (len(content) - i))
    return entries


def trim(data, remove=UNUSED_CALLBACKS):
    """The module with `remove` taken out of its exports; (new bytes, names removed)."""
    out = bytearray(data[:8])
    removed = []
    seen_exports = False
    for sid, header, start, end in sections(data):
        if sid != EXPORT_SECTION:
            out += data[header:end]
            continue
        seen_exports = True
        entries = parse_exports(data[start:end])
        kept = [(n, raw) for n, raw in entries if n not in remove]
        removed = [n for n, _ in entries if n in remove]
        names = {n for n, _ in kept}
        missing = [n for n in REQUIRED if n not in names]
        if missing:
            raise WasmError("the module does not export %s; is it the mtls-authz filter?" % ", ".join(missing))
        content = write_leb(len(kept)) + b"".join(raw for _, raw in kept)
        out += bytes([EXPORT_SECTION]) + write_leb(len(content)) + content
    if not seen_exports:
        raise WasmError("the module has no export section")
    return bytes(out), removed


def main(argv):
    if len(argv) not in (1, 2):
        print(__doc__.strip().split("\n\n")[-2], file=sys.stderr)
        return 2
    src = argv[0]
    dst = argv[1] if len(argv) == 2 else src
    with open(src, "rb") as f:
        data = f.read()
    try:
        trimmed, removed = trim(data)
    except (WasmError, UnicodeDecodeError) as e:
        print("trim-wasm: %s: %s" % (src, e), file=sys.stderr)
        return 1
    if dst == src:
        # Written through, not replaced: cargo hard-links target/.../release/X.wasm
        # to its deps/ copy and links it again on every build, so the trimmed
        # bytes must be in the file both names share.
        with open(dst, "r+b") as f:
            f.write(trimmed)
            f.truncate()
    else:
        tmp = dst + ".trim-tmp"
        with open(tmp, "wb") as f:
            f.write(trimmed)
        os.replace(tmp, dst)
    print("trim-wasm: %s: removed %d unused callback exports (%s)"
          % (dst, len(removed), ", ".join(removed) or "already trimmed"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

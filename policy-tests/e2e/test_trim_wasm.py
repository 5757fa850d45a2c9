"""filter/trim-wasm.py: the callbacks Envoy would call for nothing are gone, and nothing else changed.

That the trimmed module still works is the rest of this suite: every test
runs Envoy with the module scripts/build.sh trimmed.
"""

import importlib.util

import pytest

from e2e_lib import REPO

spec = importlib.util.spec_from_file_location("trim_wasm", REPO / "filter" / "trim-wasm.py")
trim_wasm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trim_wasm)


def exports(data):
    for sid, _, start, end in trim_wasm.sections(data):
        if sid == trim_wasm.EXPORT_SECTION:
            return [name for name, _ in trim_wasm.parse_exports(data[start:end])]
    return []


def module(export_names):
    """A minimal module whose export section lists `export_names` (all function 0) next to a custom section."""
    entries = b"".join(trim_wasm.write_leb(len(n)) + n.encode() + b"\x00" + trim_wasm.write_leb(0) for n in export_names)
    content = trim_wasm.write_leb(len(export_names)) + entries
    custom = b"\x04name" + b"payload"
    return (b"\0asm\x01\0\0\0" + b"\x00" + trim_wasm.write_leb(len(custom)) + custom
            + b"\x07" + trim_wasm.write_leb(len(content)) + content)


@pytest.mark.filter
def test_the_suites_filter_is_trimmed(wasm_path):
    names = exports(wasm_path.read_bytes())
    assert names, "no exports read from %s" % wasm_path
    left = [n for n in trim_wasm.UNUSED_CALLBACKS if n in names]
    assert not left, "%s still exports %s: build it with scripts/build.sh" % (wasm_path, left)
    for required in trim_wasm.REQUIRED:
        assert required in names, required


# The SDK trait method behind each trimmed export.
SDK_METHOD = {
    "proxy_on_response_headers": "on_http_response_headers",
    "proxy_on_response_body": "on_http_response_body",
    "proxy_on_response_trailers": "on_http_response_trailers",
    "proxy_on_log": "on_log",
    "proxy_on_done": "on_done",
}


def test_the_filter_implements_none_of_the_trimmed_callbacks():
    # Envoy never calls a callback whose export is trimmed: implementing one in
    # the filter would be dead code that looks alive.
    assert sorted(SDK_METHOD) == sorted(trim_wasm.UNUSED_CALLBACKS), "map every trimmed export to its SDK method"
    sources = {p: p.read_text() for p in sorted((REPO / "filter" / "src").glob("**/*.rs"))}
    assert sources, "no filter sources found"
    for export, method in SDK_METHOD.items():
        for path, text in sources.items():
            assert "fn %s(" % method not in text, (
                "%s implements %s, but filter/trim-wasm.py removes %s: take it off UNUSED_CALLBACKS"
                % (path.relative_to(REPO), method, export))


def test_trim_removes_exactly_the_unused_callbacks_and_keeps_the_rest():
    names = list(trim_wasm.REQUIRED) + ["proxy_on_queue_ready"] + list(trim_wasm.UNUSED_CALLBACKS)
    data = module(names)
    trimmed, removed = trim_wasm.trim(data)
    assert sorted(removed) == sorted(trim_wasm.UNUSED_CALLBACKS)
    assert exports(trimmed) == list(trim_wasm.REQUIRED) + ["proxy_on_queue_ready"]
    # The other sections are copied byte for byte.
    others = lambda d: [d[h:e] for sid, h, _, e in trim_wasm.sections(d) if sid != trim_wasm.EXPORT_SECTION]
    assert others(trimmed) == others(data)
    assert trim_wasm.trim(trimmed) == (trimmed, [])


def test_a_module_that_is_not_the_filter_is_refused():
    with pytest.raises(trim_wasm.WasmError, match="does not export proxy_on_request_headers"):
        trim_wasm.trim(module([n for n in trim_wasm.REQUIRED if n != "proxy_on_request_headers"]))
    with pytest.raises(trim_wasm.WasmError, match="not a WebAssembly"):
        trim_wasm.trim(b"\x7fELF" + b"\0" * 20)
    with pytest.raises(trim_wasm.WasmError, match="runs past the end"):
        trim_wasm.trim(module(list(trim_wasm.REQUIRED))[:-3])


def test_the_command_rewrites_the_file_in_place(tmp_path):
    path = tmp_path / "f.wasm"
    path.write_bytes(module(list(trim_wasm.REQUIRED) + ["proxy_on_log"]))
    assert trim_wasm.main([str(path)]) == 0
    assert "proxy_on_log" not in exports(path.read_bytes())
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"nope")
    assert trim_wasm.main([str(bad)]) == 1
    assert bad.read_bytes() == b"nope", "a refused module must be left as it was"

#!/usr/bin/env python3
"""Generate policy/src/bestfit.rs from Microsoft's WindowsBestFit tables.

Windows' ANSI APIs (WideCharToMultiByte without WC_NO_BEST_FIT_CHARS) turn
some non-ASCII characters into ASCII bytes: U+00A5 YEN SIGN becomes 0x5C `\\`
under code page 932, U+FF0F FULLWIDTH SOLIDUS becomes `/` under 1252, and so
on (the "WorstFit" attack class, CVE-2024-4577). A path that holds no
delimiter as Unicode can hold one after that conversion, so the engine must
know exactly which characters best-fit to which ASCII bytes. That list is
derived here from the tables Microsoft published, never written by hand.

The tables are the bestfit*.txt files of
https://www.unicode.org/Public/MAPPINGS/VENDORS/MICSFT/WindowsBestFit/
(format in that folder's readme.txt). They are third-party data: keep them
outside the repository; the generated file records each one's SHA-256.

    python3 scripts/gen-bestfit.py TABLE_DIR            # writes policy/src/bestfit.rs
    python3 scripts/gen-bestfit.py TABLE_DIR OUT.rs

Only the WCTABLE section (Unicode -> code page, where best fit lives) is read.
An entry is kept when it maps a code point above U+007F to a single ASCII byte:
a value below 0x80 (in a double-byte code page a value below 0x100 is a single
byte, with no lead byte). The byte is recorded, not the glyph some fonts draw
for it: in 932 and 949 the byte 0x5C is drawn as a yen or won sign but the file
system reads it as `\\`.

Python stdlib only. The output is rustfmt-clean as written (rustfmt.toml,
max_width 140) and depends on the tables alone.
"""

import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "policy", "src", "bestfit.rs")
SOURCE_URL = "https://www.unicode.org/Public/MAPPINGS/VENDORS/MICSFT/WindowsBestFit/"

# What the generated unit tests assert, checked here against the tables first:
# (code point, ASCII byte, code page) that must be in the list. These are read
# from the tables (their WCTABLE lines), not assumed: e.g. U+00E9 is native
# (0xE9) in 1252, and best-fits to `e` in 932, 949, 950, 1251 and 1253.
EXPECTED = [
    (0x00A5, 0x5C, 932),  # YEN SIGN -> `\` (0x5C, drawn as a yen sign in Japanese fonts)
    (0x20A9, 0x5C, 949),  # WON SIGN -> `\` (0x5C, drawn as a won sign in Korean fonts)
    (0xFF0F, 0x2F, 1252),  # FULLWIDTH SOLIDUS -> `/`
    (0x00E9, 0x65, 932),  # LATIN SMALL LETTER E WITH ACUTE -> `e`
]
# (code point, code page) that must not best-fit to ASCII: é is a native 1252 character (0xE9).
EXPECTED_ABSENT = [(0x00E9, 1252)]


def fail(msg):
    sys.exit(f"gen-bestfit.py: {msg}")


def parse_table(path):
    """Returns (code page, CODEPAGE line, is_dbcs, {code point: value}) from one bestfit file's WCTABLE."""
    data = open(path, "rb").read()
    name = os.path.basename(path)
    codepage = None
    codepage_line = None
    dbcs = None
    wctable = None
    remaining = 0
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        # `;` starts a comment; comments hold text in the code page's own
        # encoding, the fields before them are ASCII.
        body, _, comment = raw.rstrip(b"\r").partition(b";")
        try:
            fields = body.decode("ascii").split()
        except UnicodeDecodeError:
            fail(f"{name}:{lineno}: non-ASCII bytes outside a comment")
        if not fields:
            continue
        where = f"{name}:{lineno}"
        if remaining:
            if len(fields) != 2:
                fail(f"{where}: WCTABLE record needs 2 fields, has {len(fields)}")
            try:
                unicode, value = (int(f, 16) for f in fields)
            except ValueError:
                fail(f"{where}: WCTABLE record is not two hex numbers: {fields}")
            if unicode > 0xFFFF or value > (0xFFFF if dbcs else 0xFF):
                fail(f"{where}: WCTABLE record out of range: {fields}")
            if unicode in wctable:
                fail(f"{where}: U+{unicode:04X} mapped twice")
            wctable[unicode] = value
            remaining -= 1
            continue
        tag = fields[0]
        if tag == "CODEPAGE":
            codepage = int(fields[1])
            codepage_line = " ".join(fields)
            comment = comment.decode("ascii", "replace").strip()
            if comment:
                codepage_line += " ; " + comment
        elif tag == "CPINFO":
            if fields[1] not in ("1", "2"):
                fail(f"{where}: CPINFO kind {fields[1]} is neither 1 nor 2")
            dbcs = fields[1] == "2"
        elif tag == "WCTABLE":
            if wctable is not None:
                fail(f"{where}: second WCTABLE")
            if dbcs is None:
                fail(f"{where}: WCTABLE before CPINFO")
            wctable = {}
            remaining = int(fields[1])
        elif tag == "ENDCODEPAGE":
            break
        # MBTABLE, DBCSRANGE, DBCSTABLE and their records: the other direction, not read.
    if remaining:
        fail(f"{name}: WCTABLE ends {remaining} records short")
    if codepage is None or wctable is None:
        fail(f"{name}: no CODEPAGE or no WCTABLE")
    m = re.fullmatch(r"bestfit(\d+)\.txt", name)
    if not m or int(m.group(1)) != codepage:
        fail(f"{name}: file name does not match CODEPAGE {codepage}")
    if any(0xD800 <= u <= 0xDFFF and v < 0x80 for u, v in wctable.items()):
        fail(f"{name}: a surrogate maps to ASCII; a Rust char cannot hold it")
    return codepage, codepage_line, dbcs, wctable, hashlib.sha256(data).hexdigest()


def byte_literal(b):
    if b == 0x5C:
        return "b'\\\\'"
    if b == 0x27:
        return "b'\\''"
    if 0x20 <= b < 0x7F:
        return f"b'{chr(b)}'"
    return f"b'\\x{b:02x}'"


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: gen-bestfit.py TABLE_DIR [OUT.rs]")
    table_dir = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else DEFAULT_OUT
    names = [n for n in os.listdir(table_dir) if re.fullmatch(r"bestfit\d+\.txt", n)]
    if not names:
        fail(f"no bestfit*.txt in {table_dir}")
    tables = sorted((parse_table(os.path.join(table_dir, n)) + (n,) for n in names), key=lambda t: t[0])
    if len(tables) > 32:
        fail("more than 32 code pages do not fit the u32 mask")
    code_pages = [t[0] for t in tables]
    bit = {cp: 1 << i for i, cp in enumerate(code_pages)}
    all_mask = (1 << len(code_pages)) - 1

    masks = {}  # (code point, byte) -> code page mask
    for cp, _, dbcs, wctable, _, _ in tables:
        for u, v in wctable.items():
            # Single-byte code pages: every value is one byte. Double-byte: a
            # value below 0x100 is one byte with no lead byte. Either way an
            # ASCII byte is a value below 0x80.
            if u > 0x7F and v < 0x80:
                masks[(u, v)] = masks.get((u, v), 0) | bit[cp]
    entries = sorted(masks.items())

    for u, b, cp in EXPECTED:
        if cp not in bit or not masks.get((u, b), 0) & bit[cp]:
            fail(f"tables do not map U+{u:04X} to 0x{b:02X} under {cp}; fix EXPECTED")
    for u, cp in EXPECTED_ABSENT:
        if cp not in bit or any(m & bit[cp] for (k, _), m in entries if k == u):
            fail(f"tables best-fit U+{u:04X} to ASCII under {cp}; fix EXPECTED_ABSENT")

    def pages(mask):
        if mask == all_mask:
            return "all"
        return " ".join(str(cp) for cp in code_pages if mask & bit[cp])

    o = []
    w = o.append
    w("// Generated by scripts/gen-bestfit.py from Microsoft's WindowsBestFit tables; do not edit.")
    w("// Regenerate: python3 scripts/gen-bestfit.py TABLE_DIR, TABLE_DIR holding the bestfit*.txt of")
    w(f"// {SOURCE_URL}")
    w("// Source tables (SHA-256, then the file's CODEPAGE line):")
    for cp, line, dbcs, wctable, sha, name in tables:
        w(f"//   {name:<16} {sha}")
        w(f"//   {'':<16} {line}")
    w("")
    w("//! Windows \"best fit\": WideCharToMultiByte without WC_NO_BEST_FIT_CHARS (every ANSI `...A` API,")
    w("//! and a program's argv on an ANSI code page) turns these non-ASCII characters into ASCII bytes,")
    w("//! e.g. U+00A5 YEN SIGN into 0x5C `\\` under 932 (the \"WorstFit\" attack class, CVE-2024-4577).")
    w("//! Every WCTABLE entry of the tables above that maps a code point above U+007F to a single byte")
    w("//! below 0x80 is listed. 0x5C is recorded as the byte the file system reads, `\\`, though Japanese")
    w("//! and Korean fonts draw it as a yen or won sign.")
    w("")
    w("/// The code page of each bit of a [`BEST_FIT`] mask: bit `i` is `CODE_PAGES[i]`.")
    w(f"pub const CODE_PAGES: [u16; {len(code_pages)}] = [{', '.join(str(cp) for cp in code_pages)}];")
    w("")
    w("/// `(character, ASCII byte, code pages)`: under each code page whose bit is set (see")
    w("/// [`CODE_PAGES`]) Windows' best-fit conversion turns the character into the byte. Sorted by")
    w("/// character then byte, each pair once.")
    w("pub static BEST_FIT: &[(char, u8, u32)] = &[")
    # rustfmt aligns the trailing comments of a list: pad every tuple to the widest.
    rows = [(f"('\\u{{{u:04x}}}', {byte_literal(b)}, 0x{mask:04x}),", pages(mask)) for (u, b), mask in entries]
    width = max(len(t) for t, _ in rows)
    for t, comment in rows:
        w(f"    {t:<{width}} // {comment}")
    w("];")
    w("")
    w("/// The ASCII bytes `c` best-fits to, each with the mask of code pages (see [`CODE_PAGES`]) that")
    w("/// do it; empty for a character no table turns into ASCII (every ASCII character among them).")
    w("pub fn best_fit_ascii(c: char) -> impl Iterator<Item = (u8, u32)> {")
    w("    let start = BEST_FIT.partition_point(|&(k, _, _)| k < c);")
    w("    BEST_FIT[start..].iter().take_while(move |&&(k, _, _)| k == c).map(|&(_, b, m)| (b, m))")
    w("}")
    w("")
    w("/// Whether some code page turns `c` into a byte that means something in a path, so that `c`")
    w("/// must be refused rather than read as an ordinary character:")
    w("///")
    w("/// - `/` and `\\`: separators (Windows takes both);")
    w("/// - `.`: dot segments (`..`), and the trailing dots Windows strips from a name;")
    w("/// - `%`: escapes, decoded by whoever reads the path next;")
    w("/// - `?` and `#`: the start of the query and of the fragment;")
    w("/// - `;`: path parameters (`;jsessionid=`, matrix parameters) that servers cut off;")
    w("/// - `:`: NTFS alternate data streams (`file::$DATA`) and drive letters (`C:`);")
    w("/// - a space, a control byte below 0x20 or 0x7F: whitespace and controls that are trimmed or")
    w("///   stripped (trailing spaces of a Windows name, a header's surrounding whitespace).")
    w("pub fn best_fits_to_delimiter(c: char) -> bool {")
    w("    best_fit_ascii(c).any(|(b, _)| matches!(b, b'/' | b'\\\\' | b'.' | b'%' | b'?' | b'#' | b';' | b':' | b' ' | 0x00..=0x1f | 0x7f))")
    w("}")
    w("")
    w("#[cfg(test)]")
    w("mod tests {")
    w("    use super::*;")
    w("")
    w("    fn bit(code_page: u16) -> u32 {")
    w("        let i = CODE_PAGES.iter().position(|&cp| cp == code_page).unwrap();")
    w("        1 << i")
    w("    }")
    w("")
    w("    fn fits(c: char, byte: u8, code_page: u16) -> bool {")
    w("        best_fit_ascii(c).any(|(b, m)| b == byte && m & bit(code_page) != 0)")
    w("    }")
    w("")
    w("    #[test]")
    w("    fn yen_sign_is_a_backslash_under_932() {")
    w("        assert!(fits('\\u{00a5}', b'\\\\', 932));")
    w("        assert!(best_fits_to_delimiter('\\u{00a5}'));")
    w("    }")
    w("")
    w("    #[test]")
    w("    fn won_sign_is_a_backslash_under_949() {")
    w("        assert!(fits('\\u{20a9}', b'\\\\', 949));")
    w("        assert!(best_fits_to_delimiter('\\u{20a9}'));")
    w("    }")
    w("")
    w("    #[test]")
    w("    fn fullwidth_solidus_is_a_slash() {")
    w("        assert!(fits('\\u{ff0f}', b'/', 1252));")
    w("        assert!(best_fits_to_delimiter('\\u{ff0f}'));")
    w("    }")
    w("")
    w("    #[test]")
    w("    fn e_acute_is_e_under_932_and_native_under_1252() {")
    w("        // 1252 has U+00E9 as its own byte 0xE9, so it does not best-fit there; 932 has none and writes `e`.")
    w("        assert!(fits('\\u{00e9}', b'e', 932));")
    w("        assert!(best_fit_ascii('\\u{00e9}').all(|(_, m)| m & bit(1252) == 0));")
    w("        assert!(!best_fits_to_delimiter('\\u{00e9}'));")
    w("    }")
    w("")
    w("    #[test]")
    w("    fn ascii_is_not_in_the_list() {")
    w("        assert!(BEST_FIT.iter().all(|&(c, _, _)| !c.is_ascii()));")
    w("        assert!(best_fit_ascii('a').next().is_none());")
    w("        assert!(!best_fits_to_delimiter('/'));")
    w("    }")
    w("")
    w("    #[test]")
    w("    fn list_is_sorted_and_deduplicated() {")
    w("        assert!(BEST_FIT.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)));")
    w("        assert!(BEST_FIT.iter().all(|&(_, b, m)| b < 0x80 && m != 0 && m >> CODE_PAGES.len() == 0));")
    w("        assert!(CODE_PAGES.windows(2).all(|w| w[0] < w[1]));")
    w("    }")
    w("}")
    text = "\n".join(o) + "\n"
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)

    print(f"{out}: {len(entries)} entries, {len({u for (u, _), _ in entries})} characters, code pages {code_pages}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""The generated request targets of the differential suite: deterministic
(seeded), as raw bytes exactly as they go on the wire.

    generate(long=False, seed=SEED) -> [Target(raw=b"/a/%2F", family="byte-pct-upper"), ...]

Families (each a list of atoms put into segment templates):
- every byte 0x00-0xFF raw, `%XX` and `%xx`;
- Unicode that folds, normalises or best-fits into ASCII (fullwidth forms,
  `¥`, `₩`, dotless i, long s, Kelvin, ligatures, U+FE70-U+FEFF, combining
  marks, NFD spellings), as raw UTF-8 and percent-encoded UTF-8;
- payloads in the style of public traversal lists (`..%2f`, `..;/`, `%252e`, ...);
- real-world shapes (`/app;jsessionid=ABC/x`, `/wiki/C%23_(programming_language)`, ...);
- query and fragment suffixes, and random compositions of all of the above.

The short variant (CI) puts each atom into two templates picked by the seeded
generator; the long one (`--long`) into every template, plus many more
random compositions.
"""

import random
import unicodedata
from dataclasses import dataclass

SEED = 20261201

# Where an atom X goes; "doubled" repeats it, "trailing" ends the path in
# '/', the last two put it inside a path parameter (what `strip` removes).
TEMPLATES = (
    b"/a/X",
    b"/a/Xb/c",
    b"/a/bX",
    b"/X/a",
    b"/a/X/",
    b"/a/XX",
    b"/a;jsessionid=X/b",
    b"/a/b;X",
)

# Where a traversal-style payload P goes (payloads bring their own slashes).
PAYLOAD_TEMPLATES = (
    b"/a/Padmin",
    b"/a/P/admin",
    b"/Padmin",
    b"/a/bP",
    b"/a/PP/admin",
)


@dataclass(frozen=True)
class Target:
    raw: bytes
    family: str

    def display(self):
        """The target as printable ASCII (other bytes as \\xNN)."""
        return "".join(chr(b) if 0x20 < b < 0x7f and b != 0x5c else "\\x%02x" % b for b in self.raw)


def pct(data, lower=False):
    return b"".join((b"%%%02x" if lower else b"%%%02X") % b for b in data)


# --------------------------------------------------------------------------- atoms

def byte_atoms():
    """(family, atom) for every byte raw, %XX and (where it differs) %xx."""
    out = []
    for b in range(256):
        out.append(("byte-raw", bytes([b])))
        out.append(("byte-pct-upper", pct(bytes([b]))))
        if pct(bytes([b]), lower=True) != pct(bytes([b])):
            out.append(("byte-pct-lower", pct(bytes([b]), lower=True)))
    return out


def _assigned(cp):
    return unicodedata.category(chr(cp)) != "Cn"


def unicode_strings():
    """Strings that fold, normalise or best-fit into ASCII, or look like it."""
    chars = [chr(cp) for cp in range(0xFF01, 0xFF5F)]  # fullwidth ASCII
    chars += [chr(cp) for cp in range(0xFE70, 0xFF00) if _assigned(cp)]  # Arabic presentation forms B, BOM
    chars += [chr(cp) for cp in range(0xFE50, 0xFE70) if _assigned(cp)]  # small form variants (﹒ ﹨ ﹖)
    chars += list(
        "\u00a5\u20a9"  # yen, won: best-fit '\' in cp932 / cp949
        "\u0131\u0130\u017f\u212a\u212b\u2126\u00df\u1e9e\u03c2\u03a3"  # dotless/dotted i, long s, Kelvin, Angstrom, Ohm, sharp s, sigma
        "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06\u0132\u0133\u01c4\u01c6\u1d6b"  # ligatures
        "\u2024\u2025\u2026\u2215\u2044\u29f8\u1735\u2216\u29f5\u29f9\uff0f\uff3c\u3000"  # dots and slashes
        "\u00a0\u2000\u2002\u2007\u200a\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u180e"  # spaces and joiners
        "\u00aa\u00b2\u00b9\u00ba\u00bc\u2070\u2071\u207f\u2080\u2100\u2101\u2105\u2106\u2116\u2122\u33a1"
        "\u037e\u0387\u02b9\u02bc\u02c8\u2018\u2019\u201c\u2032\u2033\u00b4\u0060\u02dc"  # ; · ' quotes
        "\u00e9\u00c5\u00f1\u00fc\u00e7\u0107\u4e2d\u00e6\u0153\u00f8\u0111\u00fe"  # ordinary non-ASCII letters
        "\u2460\u24b6\u24d0\U0001d400\u0391\u0410\u0430\u0435\u043e\u0440\u0455\u0456"  # circled, Greek/Cyrillic look-alikes
        "\ufe10\ufe13\ufe14\ufe19\ufe30\ufe31\ufe32\ufe33"  # vertical forms (︰ is NFKC "..")
        "\u2474\u2488\u249c\u3251\u32c0\u33c2\u33d8"  # parenthesised / full-stop forms ("1." "(a)" "a.m.")
        "\ufffd\ufeff\u00ad\u034f\u061c\u200e\u200f\u202e"  # replacement, BOM, soft hyphen, marks, bidi
        "\U0001d41a\U0001f600\U000e0041"  # mathematical a, emoji, tag A
    )
    combos = [
        "e\u0301", "cafe\u0301", "A\u030a", "o\u0308", "n\u0303", "i\u0307", "\u017f\u0307",
        "\u1e9b\u0323", "=\u0338", "<\u0338", ".\u0301", "..\u0301", "a\u0338", "a\u20d2", "K\u0301",
        "\u0301", "\u0338", "\u20e5", "\u0308\u0308", "\uac00", "\u1100\u1161",  # Hangul NFC vs NFD
    ]
    marks = [chr(cp) for cp in range(0x0300, 0x0370)]
    seen, out = set(), []
    for s in chars + combos + marks + ["a" + m for m in marks]:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def unicode_atoms():
    out = []
    for s in unicode_strings():
        data = s.encode("utf-8")
        out.append(("unicode-raw", data))
        out.append(("unicode-pct-upper", pct(data)))
        out.append(("unicode-pct-lower", pct(data, lower=True)))
    return out


PAYLOADS = [
    b"../", b"..%2f", b"..%2F", b"%2e%2e/", b"%2E%2E/", b"%2e%2e%2f", b".%2e/", b"%2e./", b"..;/", b"..;x/",
    b";/", b"..%3b/", b"%2e%2e;/", b"%252e%252e/", b"%252e", b"..%252f", b"%25%32%65", b"%%32%65",
    b"..%c0%af", b"..%c1%9c", b"%c0%ae%c0%ae/", b"%e0%80%ae", b"..%e0%80%af", b"%f0%80%80%ae",
    b"..%5c", b"..%5C", b"\\..\\", b"..\\", b"%5c..%5c", b"..%255c",
    b"/./", b"./", b"/.", b"//", b"///", b"/%2e/", b"/%2E/",
    b";jsessionid=ABC123", b";jsessionid=ABC/", b";a=b;c=d", b"%3bjsessionid=x", b";", b";/..;/",
    b"%00", b"%00/", b"..%00/", b"%0d%0a", b"%09", b"%20", b"%20/", b".%20/", b"%2e%20/",
    b"%u002e%u002e/", b"%uff0e%uff0e/", b"%ef%bc%8e%ef%bc%8e/", b"%ef%bc%8f", b"%e2%88%95",
    b"%3f", b"%23", b"?", b"#", b"%3f/../", b"%23/../", b"~", b".json", b".html", b"::$DATA", b"~1",
    b"%252f", b"%2f", b"%2F..%2F", b"%5C%2E%2E%5C", b"....//", b"..././", b".../",
]

REAL_WORLD = [
    b"/admin/login/", b"/admin/login", b"/api/users/", b"/api/users//", b"/", b"/index.html",
    b"/app;jsessionid=ABC/x", b"/app/x;jsessionid=0123456789ABCDEF", b"/shop/item;color=red/size",
    b"/shop/cart;jsessionid=A1;lang=en", b"/shop;jsessionid=A1;lang=en/cart",
    b"/;jsessionid=ABC", b"/app/login.jsp;jsessionid=ABC?next=/admin",
    b"/wiki/C%23_(programming_language)", b"/wiki/F%23", b"/wiki/100%25_(album)", b"/wiki/50%25_off",
    b"/wiki/Why%3F", b"/wiki/Special:Search/a%3Fb", b"/wiki/Talk:Main_Page", b"/wiki/Washington,_D.C.",
    b"/wiki/Caf%C3%A9", b"/wiki/Cafe%CC%81", b"/wiki/%E2%82%AC", b"/wiki/AT%26T", b"/wiki/Ren%C3%A9_Descartes",
    b"/wiki/St._Louis", b"/wiki/Dr.", b"/wiki/U.S.", b"/wiki/%E6%9D%B1%E4%BA%AC", b"/wiki/M*A*S*H",
    b"/api/v4/projects/group%2Fproject", b"/api/v4/projects/group%2Fsub%2Fproject/repository/files/src%2Fmain.rs",
    b"/api/v4/projects/group%2fproject/issues", b"/repos/o/r/contents/a%20b", b"/repos/o/r/git/refs/heads/feature%2Fx",
    b"/search/a|b", b"/x[0]", b"/x%5B0%5D", b"/a%7Cb", b"/a^b", b"/a%5Eb", b"/list[]", b"/q/{x}", b"/q/%7Bx%7D",
    b"/~user/", b"/%7Euser", b"/%7euser/x", b"/a+b", b"/a%2Bb", b"/users/me@example.com", b"/mail/a%40b.c",
    b"/files/report%20final.pdf", b"/files/report+final.pdf", b"/static/app.min.js", b"/a/b.json", b"/a/b.",
    b"/docs/internal./x", b"/docs/internal%20/x", b"/img/logo.png?v=3", b"/search?q=a/b", b"/path/?x", b"/a?",
    b"/a#top", b"/a?b#c", b"/a?x=%00", b"/a?x=\x01", b"/a?x=\x7f", b"/a?x=\xff", b"/a?x=%ff", b"/a?x= y",
    b"/api/payment/create", b"/api/payment/query/123", b"/api/payment/admin/x", b"/API/payment/create",
    b"/api/payment/create.json", b"/api/payment/create/", b"/api/payment/%61dmin/x", b"/api/payment/ADMIN/x",
    b"/api/payment/admin%2Fx", b"/api/payment/admin;x/y", b"/api/payment/adm%C4%B1n/x", b"/api/payment/admin%E2%80%8B/x",
    b"/v1/objects/a%2Fb%2Fc", b"/v1/objects/a%25b", b"/v1/objects/%2A", b"/s3/bucket/key%20with%20spaces",
    b"/npm/@scope%2Fpkg", b"/npm/@scope/pkg", b"/pypi/simple/zope.interface/", b"/maven/org/x/1.0/x-1.0.jar",
    b"/%F0%9F%98%80", b"/emoji/\xf0\x9f\x98\x80", b"/caf\xc3\xa9", b"/a b", b"/a\tb",
]

QUERY_SUFFIXES = [b"?x=1", b"?a/../b", b"?%2F", b"?x=%00", b"?\x01", b"?x\x7f", b"#frag", b"?x#y", b"?", b"#"]

WORDS = [b"a", b"b", b"admin", b"api", b"v1", b"x.json", b"A", b"Admin", b"foo-bar", b"_", b"~", b"1"]


def _fill(template, atom, marker):
    return template.replace(marker, atom)


def generate(long=False, seed=SEED):
    """The corpus, deduplicated in generation order (the first family wins)."""
    rng = random.Random(seed)
    out, seen = [], set()

    def add(raw, family):
        if raw not in seen:
            seen.add(raw)
            out.append(Target(raw, family))

    def templated(family, atom, templates, per_atom):
        chosen = templates if per_atom is None else rng.sample(templates, per_atom)
        for t in chosen:
            add(_fill(t, atom, b"P" if b"P" in t else b"X"), family)

    per_atom = None if long else 2
    for family, atom in byte_atoms():
        templated(family, atom, TEMPLATES, per_atom)
    for family, atom in unicode_atoms():
        # Short: every string raw and upper-case encoded, a third of them lower-case too.
        if not long and family == "unicode-pct-lower" and rng.random() > 0.34:
            continue
        templated(family, atom, TEMPLATES, None if long else 1)
    for p in PAYLOADS:
        templated("payload", p, PAYLOAD_TEMPLATES, per_atom)
    for r in REAL_WORLD:
        add(r, "real-world")
        add(r.rstrip(b"/") + b"/", "real-world")

    # Random compositions: words, byte and Unicode atoms, payloads; now and
    # then a trailing slash or a query/fragment suffix.
    pool = [a for _, a in byte_atoms()] + [a for _, a in unicode_atoms()]
    n = 20000 if long else 700
    for _ in range(n):
        segs = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if kind < 0.45:
                seg = rng.choice(WORDS)
            elif kind < 0.85:
                seg = rng.choice(WORDS) + rng.choice(pool) + (rng.choice(WORDS) if rng.random() < 0.5 else b"")
            elif kind < 0.95:
                seg = rng.choice(pool) + rng.choice(pool)
            else:
                seg = rng.choice(PAYLOADS) + rng.choice(WORDS)
            segs.append(seg)
        raw = b"/" + b"/".join(segs)
        if rng.random() < 0.15:
            raw += b"/"
        if rng.random() < 0.1:
            raw += rng.choice(QUERY_SUFFIXES)
        add(raw, "random")
    for r in REAL_WORLD[:30]:
        for q in QUERY_SUFFIXES:
            add(r.split(b"?")[0].split(b"#")[0] + q, "query")
    return out


if __name__ == "__main__":
    import sys
    corpus = generate(long="--long" in sys.argv)
    fams = {}
    for t in corpus:
        fams[t.family] = fams.get(t.family, 0) + 1
    print(len(corpus), fams)

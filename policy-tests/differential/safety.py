"""The declared-safety table: for each `path_reading` option value, the
backends it is declared safe for (README.md has the same table, with why).

A profile is a `path_reading` object; it is declared safe for the backends
in the intersection of its options' sets (an option left out is strict,
safe for every backend). For every path a profile accepts, the engine's
`decoded` must equal the reading of every backend the profile is declared
safe for, under the profile's equivalence (`equivalent`).
"""

from dataclasses import dataclass

# Every backend reading the suite has, in report order (backends.py serves them).
BACKENDS = (
    "python-http.server",  # SimpleHTTPRequestHandler.translate_path
    "python-wsgiref",  # PATH_INFO (Django, Flask)
    "express4",  # route params /:s1/:s2..., non-strict, case-insensitive
    "express5",  # /*splat params
    "java-uri-path",  # java.net.URI getPath() split
    "java-uri-rawpath",  # getRawPath() split, then each segment decoded
    "go-path",  # net/http ServeMux, r.URL.Path split
    "go-escaped",  # r.URL.EscapedPath() split, url.PathUnescape per segment
    "tomcat",  # Tomcat 10 servlet getPathInfo() (path parameters stripped)
    "jetty",  # Jetty 9.4 servlet getPathInfo() (path parameters stripped)
    "envoy-normalised",  # normalize_path + merge_slashes + REJECT_REQUEST, then the upstream
    "envoy-normalised-keep",  # the same with KEEP_UNCHANGED
    "envoy-raw",  # no normalisation, KEEP_UNCHANGED
)
ALL = frozenset(BACKENDS)
ENVOY = frozenset(b for b in BACKENDS if b.startswith("envoy-"))

# Backends that decode the path exactly once after splitting off the query:
# all of them (Tomcat and Jetty decode once too; Envoy forwards, and the reading
# decodes what the upstream received once per segment).
DECODE_ONCE = ALL
# Backends whose reading keeps a final "" for a trailing '/' (a separate
# route or resource from the path without it).
KEEP_TRAILING = ALL - {"express4", "express5"}
# Backends that split on the raw path and decode per segment, so %2F stays
# inside a name. Python/WSGI, java getPath and Go r.URL.Path decode the whole
# path first; Tomcat refuses %2F (400) by default, Jetty 9.4 decodes it into a
# separator; Envoy REJECT_REQUEST refuses it.
PER_SEGMENT = frozenset({"express4", "express5", "java-uri-rawpath", "go-escaped", "envoy-normalised-keep", "envoy-raw"})
SERVLET = frozenset({"tomcat", "jetty"})

# (option, value) -> the backends the value is declared safe for. Options
# that change matching only (case, platform, unicode, suffix_patterns,
# trim_whitespace) leave what a backend receives alone, so `decoded` must
# still equal every backend's reading.
DECLARED = {
    ("trailing_slash", "refuse"): ALL,
    ("trailing_slash", "same_as_without"): frozenset({"express4", "express5"}),
    ("trailing_slash", "distinct"): KEEP_TRAILING,
    ("path_parameters", "refuse"): ALL,
    ("path_parameters", "strip"): SERVLET,
    ("encoded_slash", "refuse"): ALL,
    ("encoded_slash", "in_segment"): PER_SEGMENT,
    ("encoded_delimiters", "refuse"): ALL,
    ("encoded_delimiters", "decode_once"): DECODE_ONCE,
    ("case", "sensitive"): ALL,
    ("case", "insensitive"): ALL,
    # Every backend here runs on Linux: `posix` (segments may end in '.' or
    # space) is declared for all of them.
    ("platform", "any"): ALL,
    ("platform", "posix"): ALL,
    ("platform", "windows"): ALL,
    ("platform", "macos"): ALL,
    ("unicode", "any"): ALL,
    ("unicode", "as_sent"): ALL,
    ("unicode", "nfc"): ALL,
    ("unicode", "nfkc"): ALL,
    ("suffix_patterns", False): ALL,
    ("suffix_patterns", True): ALL,
    ("trim_whitespace", False): ALL,
    ("trim_whitespace", True): ALL,
}

# Each option's default (policy/policy.schema.json): strict.
DEFAULTS = {"trailing_slash": "refuse", "path_parameters": "refuse", "encoded_slash": "refuse",
            "encoded_delimiters": "refuse", "case": "sensitive", "platform": "any", "unicode": "any",
            "suffix_patterns": False, "trim_whitespace": False}

# The profiles the suite runs: strict, each option value but the default on
# its own (the over-refusal figures are per option), and the combinations
# real deployments use.
PROFILES = {"strict": {}}
for (_opt, _val) in DECLARED:
    if _val != DEFAULTS[_opt]:
        PROFILES["%s=%s" % (_opt, str(_val).lower())] = {_opt: _val}
PROFILES.update({
    "express": {"trailing_slash": "same_as_without", "encoded_slash": "in_segment",
                "encoded_delimiters": "decode_once", "case": "insensitive"},
    "servlet": {"path_parameters": "strip", "encoded_delimiters": "decode_once", "trailing_slash": "distinct"},
    "per-segment-router": {"encoded_slash": "in_segment", "encoded_delimiters": "decode_once",
                           "trailing_slash": "distinct"},
    "django": {"trailing_slash": "distinct", "encoded_delimiters": "decode_once", "platform": "posix"},
})


@dataclass(frozen=True)
class Known:
    """A disagreement found, reported and not yet resolved (an engine fix or a
    narrower declaration is the lead's call): the suite prints every
    occurrence, does not fail on them, and fails when the entry no longer
    occurs, so the list stays true."""

    backend: str
    option: tuple  # (option, value) the profile holds
    why: str
    applies: object  # raw target (bytes) -> bool

    def matches(self, backend, profile, raw):
        return backend == self.backend and profile.get(self.option[0]) == self.option[1] and self.applies(raw)


# Disagreements found, reported and not yet resolved: Known(backend, (option,
# value), why, predicate on the raw target). None open. Jetty 9.4's reading of
# a last segment with several ';' parameters (it strips only the last) was
# one; the engine now refuses such a segment under path_parameters "strip".
KNOWN = ()


def known(backend, profile, raw):
    """The Known entry a declared disagreement is, or None."""
    return next((k for k in KNOWN if k.matches(backend, profile, raw)), None)


def declared_for(profile):
    """The backends a profile (a path_reading dict) is declared safe for."""
    safe = ALL
    for opt, val in profile.items():
        if (opt, val) not in DECLARED:
            raise KeyError("no declared-safety entry for %s=%r: add it to safety.DECLARED and the README" % (opt, val))
        safe = safe & DECLARED[(opt, val)]
    return safe


def _root(segments):
    # "/" is [] on one side and [""] on another: the same path.
    return [] if list(segments) == [""] else list(segments)


def equivalent(profile, engine_decoded, backend_segments):
    """Whether the engine's `decoded` and a backend's reading are the same
    path under the profile: exact, except that with `same_as_without` a
    final "" on either side is dropped."""
    a, b = _root(engine_decoded), _root(backend_segments)
    if profile.get("trailing_slash") == "same_as_without":
        if a and a[-1] == "":
            a = a[:-1]
        if b and b[-1] == "":
            b = b[:-1]
    return a == b

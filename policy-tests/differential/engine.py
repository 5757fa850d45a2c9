"""The engine's reading of each target, from `mtls-authz path`.

    readings = engine_readings(cli, profile, targets)   # [EngineReading or None (not representable)]

One CLI run per profile: `mtls-authz path --format json --reading JSON` with
the targets on stdin, one per line, one JSON object back per line (exit 0, or
1 when any target was refused). A target the CLI cannot
be given on a line (not UTF-8, or with CR/LF in it) gets None: the engine
only ever sees text, and those bytes are counted as "not representable".
"""

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CLI = REPO / "target" / "release" / "mtls-authz"
CLI_HINT = "build it with `bash scripts/build.sh` (cargo build --release -p mtls-authz-cli) or set MTLS_AUTHZ_CLI"


def cli_path():
    return Path(os.environ.get("MTLS_AUTHZ_CLI") or DEFAULT_CLI)


@dataclass
class EngineReading:
    accepted: bool
    decoded: list = None
    segments: list = None
    path: str = None
    alternatives: list = None
    deny_readings: list = None
    code: str = None  # refusal code
    accepted_by: str = None


def representable(raw):
    """The target as the text the CLI takes, or None."""
    if b"\n" in raw or b"\r" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def engine_readings(cli, profile, targets, timeout=300):
    """[EngineReading | None] for `targets` (bytes) under `profile` (a path_reading dict)."""
    texts = [representable(t) for t in targets]
    sent = [t for t in texts if t is not None]
    cmd = [str(cli), "path", "--format", "json"]
    if profile:
        cmd += ["--reading", json.dumps(profile)]
    r = subprocess.run(cmd, input="".join(t + "\n" for t in sent).encode("utf-8"), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if r.returncode not in (0, 1):
        raise RuntimeError("`%s` exited %s:\n%s" % (" ".join(cmd), r.returncode, r.stderr.decode(errors="replace")[-2000:]))
    # split("\n"), not splitlines(): a target may hold U+2028 or U+0085, which JSON leaves raw.
    lines = r.stdout.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(sent):
        raise RuntimeError("`%s`: %d targets in, %d lines out" % (" ".join(cmd), len(sent), len(lines)))
    parsed = iter(lines)
    out = []
    for text in texts:
        if text is None:
            out.append(None)
            continue
        d = json.loads(next(parsed))
        if d.get("target") != text:
            raise RuntimeError("`%s`: answer for %r came back for %r" % (" ".join(cmd), d.get("target"), text))
        if d["accepted"]:
            out.append(EngineReading(True, decoded=d["decoded"], segments=d.get("segments"), path=d.get("path"),
                                     alternatives=d.get("alternatives") or [], deny_readings=d.get("deny_readings") or []))
        else:
            ref = d.get("refusal") or {}
            out.append(EngineReading(False, code=ref.get("code"), accepted_by=ref.get("accepted_by")))
    return out

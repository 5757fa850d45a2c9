#!/usr/bin/env python3
"""Extract one CRD version's openAPIV3Schema as JSON, unchanged (needs PyYAML).

    python3 deploy/schemas/extract.py CRDS.yaml KIND VERSION > deploy/schemas/<file>.json

CRDS.yaml may hold many documents (Istio's customresourcedefinitions.gen.yaml)
and Helm template lines (Envoy Gateway's chart: lines starting with "{{" are
dropped). The schema is written as the CRD publishes it, descriptions and
x-kubernetes-* extensions included; deploy/schemas/README.md says where each
pinned file came from and what the tests make of it.
"""

import json
import sys

import yaml


def extract(text, kind, version):
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("{{"))
    for doc in yaml.safe_load_all(text):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        if doc["spec"]["names"]["kind"] != kind:
            continue
        for v in doc["spec"]["versions"]:
            if v["name"] == version:
                return v["schema"]["openAPIV3Schema"]
    raise SystemExit("extract.py: no CRD for kind %s version %s" % (kind, version))


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    with open(argv[1], encoding="utf-8") as f:
        schema = extract(f.read(), argv[2], argv[3])
    sys.stdout.write(json.dumps(schema, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv)

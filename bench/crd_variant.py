#!/usr/bin/env python3
"""Writes a copy of crds/ with one schema variant, to measure with
bpfchain-bench-operator-scale --crds DIR (docs/benchmarks.md).

    bench/crd_variant.py opaque-node-status-chains OUT_DIR

opaque-node-status-chains: a BpfNodeConfig's status.chains[] items are objects the API server
is told nothing about (x-kubernetes-preserve-unknown-fields), so it neither prunes, defaults,
validates nor types them on a write; `kubectl explain bpfnodeconfig.status.chains.<field>`
then has nothing to say.
"""
import os
import shutil
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CRDS = os.path.join(HERE, "..", "crds")


def opaque_node_status_chains(out):
    path = os.path.join(out, "bpfchain.io_bpfnodeconfigs.yaml")
    with open(path) as f:
        crd = yaml.safe_load(f)
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    chains = status["properties"]["chains"]
    chains["items"] = {
        "type": "object",
        "description": chains["items"]["description"],
        "x-kubernetes-preserve-unknown-fields": True,
    }
    with open(path, "w") as f:
        yaml.safe_dump(crd, f, sort_keys=False)


VARIANTS = {"opaque-node-status-chains": opaque_node_status_chains}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in VARIANTS:
        print("usage: crd_variant.py {" + "|".join(VARIANTS) + "} OUT_DIR", file=sys.stderr)
        return 2
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(CRDS):
        if name.endswith(".yaml"):
            shutil.copy(os.path.join(CRDS, name), out)
    VARIANTS[sys.argv[1]](out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

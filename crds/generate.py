#!/usr/bin/env python3
"""Generates bpfchain's CustomResourceDefinitions from one description of the API.

BpfChain and BpfNodeConfig share the chain and program schemas (a BpfNodeConfig's spec is the
resolved chains of its node, DESIGN.md section 2), so both CRDs are written from the pieces
below rather than kept twice by hand, as controller-gen does for Go APIs.

    crds/generate.py            rewrite crds/*.yaml
    crds/generate.py --check    fail if crds/*.yaml differ from what this script writes
"""
import os
import sys

import yaml

GROUP = "bpfchain.io"
VERSION = "v1alpha1"
HERE = os.path.dirname(os.path.abspath(__file__))
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
C_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Not "bpfchain": kubectl expands a category before a resource name, so with that category
# `kubectl get bpfchain NAME` would mean "every bpfchain.io kind, then a kind called NAME".
CATEGORY = "bpfchain-all"
# A label key (an optional DNS subdomain prefix and "/", then a name of at most 63
# characters) and value, as metav1 validates them: a selector with any other key matches
# nothing, so admission refuses it.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


def obj(description, properties, required=(), **extra):
    schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def string(description, **extra):
    return {"type": "string", "description": description, **extra}


def integer(description, **extra):
    return {"type": "integer", "description": description, **extra}


def array(description, items, **extra):
    return {"type": "array", "description": description, "items": items, **extra}


LABEL_KEYS_RULE = {
    "rule": "self.all(k, size(k) <= 317 && k.matches(r'" + LABEL_KEY + "'))",
    "message": "every key must be a label key: an optional DNS subdomain prefix and '/', then "
    "at most 63 of A-Z, a-z, 0-9, '-', '_', '.', beginning and ending with a letter or digit",
}


def label_selector(description, rules=True):
    """rules=False leaves out the CEL rules (see interfaces())."""
    requirement = obj(
        "A label selector requirement: key, operator and values.",
        {
            "key": string(
                "The label key the selector applies to.", maxLength=317, pattern=LABEL_KEY
            ),
            "operator": string(
                "How the key relates to the values.",
                enum=["In", "NotIn", "Exists", "DoesNotExist"],
            ),
            "values": array(
                "Values for In and NotIn; empty for Exists and DoesNotExist.",
                {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
            ),
        },
        required=["key", "operator"],
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "self.operator in ['In', 'NotIn'] ? (has(self.values) && "
                    "size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
                    "message": "In and NotIn need values; Exists and DoesNotExist take none",
                }
            ]
        },
    )
    return obj(
        description + " An empty selector selects everything (metav1.LabelSelector).",
        {
            "matchLabels": {
                "type": "object",
                "description": "Labels that must all be present with these values.",
                "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
                "maxProperties": 64,
                **({"x-kubernetes-validations": [LABEL_KEYS_RULE]} if rules else {}),
            },
            "matchExpressions": array("Requirements that must all hold.", requirement, maxItems=64),
        },
        **{"x-kubernetes-map-type": "atomic"},
    )


def free_value(description):
    return {"description": description, "x-kubernetes-preserve-unknown-fields": True}


PROGRAM = obj(
    "One eBPF program of the chain. Programs run in list order; a program ends the chain "
    "by not tail-calling its next program.",
    {
        "name": string(
            "The program's name, a DNS label unique in the chain.", maxLength=63, pattern=DNS_LABEL
        ),
        "package": obj(
            "Where the program's package comes from. Nothing unverified is ever loaded.",
            {
                "url": string(
                    "The package (.tar.gz with BPF objects and manifest.yaml, or an L3AF "
                    "artifact): http, https or file URL.",
                    maxLength=2048,
                    pattern=r"^(https?|file)://.+",
                ),
                "sha256": string(
                    "The package's SHA-256, 64 lowercase hex digits; a download that does not "
                    "match is refused.",
                    pattern=r"^[a-f0-9]{64}$",
                ),
            },
            required=["url", "sha256"],
        ),
        "entry": string(
            "The program (function) name in the object; defaults to the package manifest's.",
            maxLength=128,
            pattern=C_IDENTIFIER,
        ),
        "nextMap": string(
            "The program's 1-slot PROG_ARRAY that it tail-calls (L3AF's map_name); defaults to "
            "the package manifest's.",
            maxLength=128,
            pattern=C_IDENTIFIER,
        ),
        "enabled": {
            "type": "boolean",
            "description": "Admin status: false keeps the program out of the chain, unloaded.",
            "default": True,
        },
        "globalData": {
            "type": "object",
            "description": "const volatile globals set before load, as text parsed by the "
            "variable's BTF type (numbers, 0x hex, IPv4/IPv6 addresses, ...). A change reloads.",
            "additionalProperties": {"type": "string"},
            "maxProperties": 64,
        },
        "freshState": {
            "type": "boolean",
            "description": "When a new version of the program is loaded (new package, "
            "globalData, ...), it starts with empty maps. By default each map that matches one "
            "of the running version's (name, type, key/value size and BTF types, max_entries, "
            "flags) is carried over: the new version runs on the very same map.",
            "default": False,
        },
        "freshMaps": array(
            "Maps of the program that start empty when a new version is loaded, while the "
            "others carry over.",
            {"type": "string", "minLength": 1, "maxLength": 128},
            maxItems=32,
            **{"x-kubernetes-list-type": "set"},
        ),
        "mapArgs": array(
            "Map contents written after load and on every change, without reloading.",
            obj(
                "Entries for one map of the program.",
                {
                    "map": string("The map's name in the object.", maxLength=128),
                    "mode": string(
                        "replace: keys not listed are deleted (as in L3AF); merge: only write.",
                        enum=["replace", "merge"],
                        default="replace",
                    ),
                    "entries": array(
                        "Key/value pairs, parsed by the map's BTF key and value types: text, or "
                        "a map of member names for a struct.",
                        obj(
                            "One map entry.",
                            {
                                "key": free_value("The key: text or a map for a struct."),
                                "value": free_value("The value: text or a map for a struct."),
                            },
                            required=["key", "value"],
                        ),
                        maxItems=4096,
                    ),
                },
                required=["map"],
            ),
            maxItems=32,
            **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["map"]},
        ),
        "monitorMaps": array(
            "Map values exported as Prometheus metrics.",
            obj(
                "One monitored map value.",
                {
                    "map": string("The map's name in the object.", maxLength=128),
                    "key": string("The key, as text parsed by the map's BTF key type.", default="0"),
                    "aggregator": string(
                        "How per-CPU values and time combine: scalar (the value), sum (over "
                        "CPUs), max-rate (largest per-second increase over CPUs), avg (over CPUs).",
                        enum=["scalar", "sum", "max-rate", "avg"],
                        default="scalar",
                    ),
                },
                required=["map"],
            ),
            maxItems=32,
        ),
    },
    required=["name", "package"],
)

# A /regular expression/ must compile. CEL has no "is this a regex" test, but matches() with
# a pattern that does not compile is an evaluation error, which refuses the object and says
# why ("error parsing regexp: ..."); asking both X and !X leaves a valid pattern no way to
# fail. (CEL speaks RE2 and the agent ECMAScript; the agent still checks, per chain.)
REGEX_RULE = {
    "rule": "!(size(self) >= 2 && self.startsWith('/') && self.endsWith('/')) || "
    "''.matches(self.substring(1, size(self) - 1)) || "
    "!''.matches(self.substring(1, size(self) - 1))",
    "message": "a /regular expression/ must compile",
}


def interfaces(rules=True):
    """CEL rules only where people write: a BpfNodeConfig holds 256 chains, whose rules
    together would exceed the API server's cost budget, and copies what a BpfChain passed."""
    return obj(
        "Host interfaces the chain attaches to.",
        {
            "names": array(
                "Exact interface names, or regular expressions written /like this/.",
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 256,
                    **({"x-kubernetes-validations": [REGEX_RULE]} if rules else {}),
                },
                minItems=1,
                maxItems=64,
            )
        },
        required=["names"],
    )


def pods(rules=True):
    return obj(
        "Pod interfaces the chain attaches to, through the CNI plugin before the pod runs.",
        {
            "namespaceSelector": label_selector("Namespaces whose pods are selected.", rules),
            "podSelector": label_selector("Pods selected in those namespaces.", rules),
        },
    )


HOOK = string(
    "Where the chain runs: xdp, tc-ingress or tc-egress (direction as seen from the host).",
    enum=["xdp", "tc-ingress", "tc-egress"],
)
PRIORITY = integer(
    "Chains on the same interface and hook run in (priority, name) order, lowest first.",
    format="int32",
    minimum=0,
    maximum=10000,
    default=100,
)
PLACEMENT = string(
    "Where the interface's chains run among other tools' programs on a TCX hook (tc-ingress, "
    "tc-egress on kernel 6.6+): first (before them, so that a program that ends packets, a "
    "CNI's, cannot keep the chain from running) or last. The chains of one interface and hook "
    "run behind one root, which goes last only when every one of them asks (a pod's veth: "
    "always first). Set when the root attaches; status says when other programs run before "
    "it.",
    enum=["first", "last"],
    default="first",
)
PROGRAMS = array(
    "The chain's programs, in the order they run (at most 32: the kernel allows 33 tail calls "
    "and the root makes one).",
    PROGRAM,
    minItems=1,
    maxItems=32,
    **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
)
TARGET_RULE = {
    "rule": "has(self.interfaces) != has(self.pods)",
    "message": "exactly one of interfaces and pods must be set",
}

CONDITIONS = array(
    "Ready, Progressing and Degraded, with reason and message (metav1.Condition).",
    obj(
        "One condition.",
        {
            "type": string("The condition's type.", maxLength=316),
            "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "observedGeneration": integer("The generation it was computed from.", format="int64"),
            "lastTransitionTime": string("When status last changed.", format="date-time"),
            "reason": string("A CamelCase category.", maxLength=1024),
            "message": string("Human-readable details.", maxLength=32768),
        },
        required=["type", "status", "lastTransitionTime", "reason", "message"],
    ),
    **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
)

BPFCHAIN_SPEC = obj(
    "An ordered chain of eBPF programs for one hook, on the host or pod interfaces of the "
    "selected nodes.",
    {
        "hook": HOOK,
        "priority": PRIORITY,
        "placement": PLACEMENT,
        "nodeSelector": label_selector("Nodes the chain runs on."),
        "interfaces": interfaces(),
        "pods": pods(),
        "programs": PROGRAMS,
        "rollout": obj(
            "How a new generation of the chain reaches the nodes.",
            {
                "maxUnavailable": {
                    "x-kubernetes-int-or-string": True,
                    "description": "Nodes updated at the same time: a number >= 1 or a "
                    "percentage of the selected nodes such as 25%.",
                    "default": 1,
                },
                "canaryNodes": integer(
                    "Nodes in the first batch, which must be Ready before the rest move.",
                    minimum=0,
                    default=1,
                ),
                "pauseSeconds": integer(
                    "Seconds to wait after the canary batch.", minimum=0, maximum=86400, default=0
                ),
                "failurePolicy": string(
                    "On a node failure: Halt keeps the remaining nodes on the previous "
                    "generation; Continue goes on; Rollback returns the failed batch to the "
                    "previous generation.",
                    enum=["Halt", "Continue", "Rollback"],
                    default="Halt",
                ),
            },
            **{
                "x-kubernetes-validations": [
                    {
                        "rule": "!has(self.maxUnavailable) || (type(self.maxUnavailable) == int "
                        "? self.maxUnavailable >= 1 : self.maxUnavailable.matches('^(100|[1-9][0-9]?)%$'))",
                        "message": "maxUnavailable must be an integer >= 1 or a percentage "
                        "from 1% to 100%",
                        "fieldPath": ".maxUnavailable",
                    }
                ]
            },
        ),
    },
    required=["hook", "programs"],
    **{
        "x-kubernetes-validations": [
            TARGET_RULE,
            {
                "rule": "self.programs.exists(p, !has(p.enabled) || p.enabled)",
                "message": "at least one program must be enabled: a chain with every program "
                "disabled would run nothing",
                "fieldPath": ".programs",
            },
        ]
    },
)

# A chain revision as the operator publishes it (api::ChainRef).
CHAIN_REF = obj(
    "A revision of this chain: the ControllerRevision, in the operator's namespace, that holds "
    "the spec at generation, and the digest the agent checks.",
    {
        "name": string("The BpfChain's name.", maxLength=253),
        "generation": integer("The BpfChain generation.", format="int64"),
        "revision": string("The ControllerRevision.", maxLength=253),
        "digest": string(
            "sha256:<hex> of the revision's data in canonical JSON.",
            pattern="^sha256:[0-9a-f]{64}$",
        ),
        "priority": integer("The chain's spec.priority at that generation."),
    },
    required=["name", "generation", "revision", "digest"],
)

BPFCHAIN_STATUS = obj(
    "What the operator observed of the chain's rollout.",
    {
        "observedGeneration": integer("The generation this status describes.", format="int64"),
        "conditions": CONDITIONS,
        "nodes": obj(
            "Node counts for the current generation.",
            {
                "matched": integer("Nodes the selector matches."),
                "updated": integer("Nodes given the current generation."),
                "ready": integer(
                    "Nodes running the current generation Ready; after a rollback, nodes "
                    "running the stable generation Ready."
                ),
                "failed": integer("Nodes that failed the current generation."),
                "stale": integer(
                    "Nodes that reported Ready but whose agent stopped reporting "
                    "(AgentNotReporting): not counted in ready."
                ),
                "idle": integer(
                    "Nodes that have nothing to attach the current generation to (no matching "
                    "interface or pod; phase Idle): neither ready nor failed."
                ),
            },
        ),
        "ready": string("ready/matched nodes, for kubectl get."),
        "phase": string(
            "Ready, RollingOut, Halted, RolledBack or Degraded (complete with failed nodes, or "
            "cleanup timed out), for kubectl get."
        ),
        "programs": integer("Enabled programs in the chain, for kubectl get."),
        "rollout": obj(
            "The operator's memory of the current rollout.",
            {
                "generation": integer("The generation being rolled out.", format="int64"),
                "canaryReadyTime": string(
                    "When every canary node first reported Ready.", format="date-time"
                ),
                "stableGeneration": integer(
                    "The last generation Ready on every matched node: what Rollback restores.",
                    format="int64",
                ),
                "rolledBack": {
                    "type": "boolean",
                    "description": "The generation was rolled back and is not applied again; "
                    "failures keeps the failures that made the rollback until a new generation.",
                },
                "waitingSince": string(
                    "Since when nodes apply the generation with none finishing; past the "
                    "operator's --progress-deadline, Progressing names them "
                    "(ProgressDeadlineExceeded).",
                    format="date-time",
                ),
                "finishedNodes": integer("Nodes Ready or Failed at the generation then."),
                "staleNodes": array(
                    "Nodes whose agent stopped reporting at the last reconcile: an "
                    "AgentNotReporting Event is sent once as a node joins the list.",
                    string("A node."),
                    maxItems=5000,
                ),
                "failedNodes": array(
                    "Nodes that report the generation Failed: a NodeFailed Event is sent once "
                    "as a node joins the list.",
                    string("A node."),
                    maxItems=5000,
                ),
            },
        ),
        "published": obj(
            "What the nodes run (the agents follow this; api/published_rollout.h): a node runs "
            "the target of the first wave whose partition its name sorts at or below (byte "
            "order), else stable, else not the chain.",
            {
                "stable": CHAIN_REF,
                "waves": array(
                    "Newest first.",
                    obj(
                        "Nodes up to partition run target.",
                        {
                            "target": CHAIN_REF,
                            "partition": string("The last node name this wave moves.",
                                                maxLength=253),
                        },
                        required=["target", "partition"],
                    ),
                    maxItems=64,
                ),
            },
        ),
        "failures": array(
            "The first node failures, for kubectl describe.",
            obj(
                "One node's failure.",
                {
                    "node": string("The node."),
                    "reason": string("Machine-readable: PackageFetchFailed, VerifierRejected, ..."),
                    "message": string("Details, such as the verifier log's tail."),
                },
            ),
            maxItems=10,
        ),
    },
)

NODE_CHAIN = obj(
    "One chain this node must run: a reference to the immutable revision of the BpfChain's "
    "spec at one generation (what the operator writes), or the chain inline (the standalone "
    "agent's file).",
    {
        "name": string("The BpfChain's name.", maxLength=253),
        "follow": {
            "type": "boolean",
            "description": "true: the node runs what the BpfChain's status.published gives it "
            "(by node name); the entry has nothing else but the name.",
        },
        "generation": integer("The BpfChain generation this node must run.", format="int64"),
        "revision": string(
            "The ControllerRevision, in the operator's namespace, that holds the chain's spec "
            "at this generation.",
            maxLength=253,
        ),
        "digest": string(
            "sha256:<hex> of the revision's data in canonical JSON (sorted keys, no spaces): "
            "the agent runs the revision only when it matches.",
            pattern="^sha256:[0-9a-f]{64}$",
        ),
        "hook": HOOK,
        # No defaults here: a reference carries none of them, and a default the API server
        # added would make the operator's entry differ from the stored one forever.
        "priority": {k: v for k, v in PRIORITY.items() if k != "default"},
        "placement": {k: v for k, v in PLACEMENT.items() if k != "default"},
        "interfaces": interfaces(rules=False),
        "pods": pods(rules=False),
        "programs": PROGRAMS,
    },
    required=["name"],
    # An entry is a membership entry ({name, follow: true}, what the operator writes), a
    # reference (generation, revision, digest: where the published rollout cannot say, and
    # what operators before membership entries wrote) or an inline chain (the standalone file,
    # operators before references). No CEL rule says so: the API server evaluates a CRD's CEL
    # rules on every update of the object, the agents' status writes included, and such a rule
    # on 20 entries was 19% of kube-apiserver's CPU during a 1,000-node change (pprof). One
    # writer (the operator) writes the entries; the agent refuses a malformed one alone
    # (SpecInvalid or RevisionUnavailable).
)

BPFNODECONFIG_SPEC = obj(
    "Every chain one node runs, written by the operator. Also the agent's standalone config "
    "file format.",
    {
        "chains": array(
            "The node's chains.",
            NODE_CHAIN,
            maxItems=256,
            # One writer (the operator) replaces the whole list: atomic, so the API server
            # tracks one field for it instead of every field of every entry (managedFields
            # were 21 of a 46 KB object with per-chain entries, and every write pays for them).
            **{"x-kubernetes-list-type": "atomic"},
        )
    },
)

ATTACHMENT = obj(
    "Where a chain is attached on this node.",
    {
        "interface": string("The interface (for a pod, its host-side veth)."),
        "hook": HOOK,
        "pod": string("namespace/name, for a pod interface."),
        "programIDs": array(
            "Kernel ids of the programs, root first.", {"type": "integer", "format": "int64"}
        ),
    },
)

BPFNODECONFIG_STATUS = obj(
    "What the node's agent runs, written by the agent.",
    {
        "observedGeneration": integer("The generation this status describes.", format="int64"),
        "conditions": CONDITIONS,
        "chainCount": integer("Chains the agent runs, for kubectl get."),
        "readyCount": integer("Chains in phase Ready, for kubectl get."),
        "failedCount": integer("Chains in phase Failed, for kubectl get."),
        "idleCount": integer(
            "Chains in phase Idle (nothing on the node to attach them to), for kubectl get."
        ),
        "agent": obj(
            "The agent and its kernel.",
            {
                "version": string("bpfchain-agent's version."),
                "heartbeatTime": string(
                    "When the agent last wrote this status: refreshed every --heartbeat-seconds "
                    "(60) even when nothing changed. Older than the operator's "
                    "--agent-stale-seconds (180), the node is not counted Ready "
                    "(AgentNotReporting); absent (an agent before heartbeats), it never is stale.",
                    format="date-time",
                ),
                "kernel": string("The kernel release."),
                "features": {
                    "type": "object",
                    "description": "Kernel features found at start (tcx, xdpLink, btf).",
                    "additionalProperties": {"type": "boolean"},
                },
            },
        ),
        "chains": array(
            "Each chain's state on this node.",
            obj(
                "One chain's state.",
                {
                    "name": string("The BpfChain's name."),
                    "generation": integer(
                        "The generation this node was given (the target phase and reason "
                        "describe).",
                        format="int64",
                    ),
                    "runningGeneration": integer(
                        "The generation actually running: differs from generation while "
                        "applying and after a failure (the previous generation keeps running); "
                        "absent when none runs.",
                        format="int64",
                    ),
                    "revision": string(
                        "The chain revision this node was given (a ControllerRevision in the "
                        "operator's namespace); absent for a chain given inline."
                    ),
                    "runningRevision": string(
                        "The chain revision of runningGeneration: differs from revision while "
                        "applying and after a failure; absent when none runs or the chain was "
                        "given inline."
                    ),
                    "phase": string(
                        "Applying, Ready, Idle (nothing on the node to attach the chain to), "
                        "Failed or Removing.",
                        enum=["Applying", "Ready", "Idle", "Failed", "Removing"],
                    ),
                    "reason": string(
                        "Machine-readable: PackageFetchFailed, ChecksumMismatch, "
                        "SignatureInvalid, VerifierRejected, AttachFailed, MapArgInvalid, "
                        "SpecInvalid, RevisionUnavailable, DigestMismatch, ..."
                    ),
                    "message": string("Details, with the verifier log's tail when it refused."),
                    "attachments": array("Where the chain is attached.", ATTACHMENT),
                },
                required=["name"],
            ),
            maxItems=256,
            # One writer (the node's agent) replaces the whole list: atomic, as spec.chains.
            **{"x-kubernetes-list-type": "atomic"},
        ),
    },
)


# The chain's name is a label value, part of field manager names and of the agents' pin
# paths: at most 63 characters, as a Service's, refused at admission rather than accepted
# and never reconciled.
NAME_RULE = {
    "rule": "size(self.metadata.name) <= 63",
    "message": "metadata.name: a BpfChain's name must be at most 63 characters",
}


def crd(kind, plural, short, spec, status, columns, root_rules=()):
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": kind,
                "listKind": kind + "List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": obj(
                            f"{kind} (bpfchain.io/{VERSION}).",
                            {
                                "apiVersion": string("The API version of this object."),
                                "kind": string("The kind of this object."),
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                            required=["spec"],
                            **({"x-kubernetes-validations": list(root_rules)} if root_rules else {}),
                        )
                    },
                }
            ],
        },
    }


CRDS = {
    "bpfchain.io_bpfchains.yaml": crd(
        "BpfChain",
        "bpfchains",
        "bpfc",
        BPFCHAIN_SPEC,
        BPFCHAIN_STATUS,
        [
            {"name": "Hook", "type": "string", "jsonPath": ".spec.hook"},
            {"name": "Programs", "type": "integer", "jsonPath": ".status.programs"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
            {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Idle", "type": "integer", "jsonPath": ".status.nodes.idle"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority", "priority": 1},
            {
                "name": "Generation",
                "type": "integer",
                "jsonPath": ".metadata.generation",
                "priority": 1,
            },
        ],
        root_rules=[NAME_RULE],
    ),
    "bpfchain.io_bpfnodeconfigs.yaml": crd(
        "BpfNodeConfig",
        "bpfnodeconfigs",
        "bpfnc",
        BPFNODECONFIG_SPEC,
        BPFNODECONFIG_STATUS,
        [
            {"name": "Chains", "type": "integer", "jsonPath": ".status.chainCount"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyCount"},
            {"name": "Failed", "type": "integer", "jsonPath": ".status.failedCount"},
            {"name": "Idle", "type": "integer", "jsonPath": ".status.idleCount"},
            {"name": "Agent", "type": "string", "jsonPath": ".status.agent.version"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
}

HEADER = "# Generated by crds/generate.py from one description of the API; edit that, not this.\n"


class NoAliasDumper(yaml.SafeDumper):
    """Shared pieces are written out in full each time: no YAML anchors in a CRD."""

    def ignore_aliases(self, data):
        return True


def render(doc):
    return HEADER + yaml.dump(doc, Dumper=NoAliasDumper, sort_keys=False, width=100)


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, doc in CRDS.items():
        path = os.path.join(HERE, name)
        text = render(doc)
        current = open(path).read() if os.path.exists(path) else None
        if current == text:
            continue
        if check:
            stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        print("crds out of date, run crds/generate.py: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Installs everything bpfchain's build, tests and demo need, idempotently: Debian packages, then
# the Go-built test-bed tools (kube-apiserver, etcd, cnitool, helm; tools/envtest/build.sh).
# Run as root. A second run installs nothing and takes a second.
#   scripts/deps.sh          what the build, the default tests and the demo need
#   scripts/deps.sh --node   also the real node's (scripts/local-node.sh, ctest -L node):
#                            containerd, runc, busybox-static, iptables, conntrack, and
#                            kubelet, kube-controller-manager, kube-scheduler
#                            (tools/envtest/build-node.sh; ~15 min of Go build when cold)
#                            and Prometheus with kubernetes_sd (tools/envtest/build-prometheus.sh,
#                            ~11 min cold: Debian's prometheus has no kubernetes_sd)
#   scripts/deps.sh --fuzz   also libFuzzer's runtime (libclang-rt-14-dev) for the
#                            -DBPFCHAIN_FUZZ=ON build (docs/testing.md); CI does not need it:
#                            its default run replays the corpora without libFuzzer
set -euo pipefail
cd "$(dirname "$0")/.."

# The build's packages are the image's build stage's (image/build-packages.txt).
mapfile -t build_packages < <(sed 's/#.*//' image/build-packages.txt | awk 'NF {print $1}')
packages=(
  # build
  "${build_packages[@]}" ccache libgtest-dev libgmock-dev libbenchmark-dev
  # the image without a container engine (scripts/image.sh)
  umoci ca-certificates
  # checks
  clang-format clang-tidy
  # tests and demo
  iproute2 iputils-ping containernetworking-plugins prometheus openssl curl jq python3 python3-yaml
  procps
)
node=0
case ${1:-} in
  --node) node=1 ;;
  --fuzz) packages+=(libclang-rt-14-dev) ;;
  "") ;;
  *) echo "deps.sh: unknown argument $1 (only --node or --fuzz)" >&2; exit 2 ;;
esac
if ((node)); then
  # The real node: Debian's containerd 1.6 and runc (../shared real_node.md), a busybox for
  # its test image, iptables for the kubelet's chains.
  packages+=(containerd runc busybox-static iptables conntrack)
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "deps.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Go builds the control plane for tests. This machine kind ships Go; the modules need >= 1.26.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  export PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null; then
  echo "deps.sh: Go >= 1.26 is required on PATH to build the test bed (tools/envtest)" >&2
  exit 1
fi
tools/envtest/build.sh >/dev/null
if ((node)); then
  tools/envtest/build-node.sh >/dev/null
  tools/envtest/build-prometheus.sh >/dev/null
fi

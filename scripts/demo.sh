#!/usr/bin/env bash
# The README's main command. What exists today (issue 2, the foundation): it builds the
# project, starts a real kube-apiserver + etcd, simulates three nodes (a Node object each, and a
# network namespace wired to the others through a bridge), loads the `counter` kernel function
# that the build produced onto the edge nodes' eth0 with XDP, sends traffic between the nodes,
# and prints the nodes as kubectl sees them and what each counter counted. When the operator
# and the agent land, the same command applies a BpfChain with kubectl instead of loading by
# hand. Everything it creates is removed on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
nodes=(node-1 node-2 node-3)
declare -A role=([node-1]=edge [node-2]=edge [node-3]=core)
fabric=bpfchain-demo-fabric
cluster_dir=""

cleanup() {
  for n in "${nodes[@]}"; do ip netns delete "bpfchain-demo-$n" 2>/dev/null || true; done
  ip netns delete "$fabric" 2>/dev/null || true
  [[ -n $cluster_dir ]] && scripts/local-cluster.sh down --dir "$cluster_dir" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "installing what is missing and building"
scripts/deps.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build >/dev/null
echo "built: $(ls build/bin | tr '\n' ' ')and build/bpf/counter.bpf.o"

say "starting a local control plane (real kube-apiserver + etcd on loopback)"
kubeconfig=$(scripts/local-cluster.sh up --owner-pid $$)
cluster_dir=$(dirname "$kubeconfig")
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }
echo "kubeconfig: $kubeconfig"

say "simulating ${#nodes[@]} nodes: a network namespace and a Node object each"
ip netns add "$fabric"
ip netns exec "$fabric" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$fabric" link add name br0 type bridge
ip -n "$fabric" link set dev br0 up
i=0
for n in "${nodes[@]}"; do
  i=$((i + 1))
  ns="bpfchain-demo-$n"
  ip netns add "$ns"
  # IPv4 only, so that the counts below are the traffic this script sends (and its ARP).
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set dev lo up
  ip -n "$ns" link add name eth0 type veth peer name "port-$i" netns "$fabric"
  ip -n "$ns" addr add "10.99.0.$i/24" dev eth0
  ip -n "$ns" link set dev eth0 up
  ip -n "$fabric" link set dev "port-$i" master br0 up
  k apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: $n
  labels: {role: ${role[$n]}, kubernetes.io/hostname: $n}
NODE
  k patch node "$n" --subresource=status --type=merge -p \
    '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"SimulatedNode","message":"bpfchain demo netns","lastHeartbeatTime":null}],"addresses":[{"type":"InternalIP","address":"10.99.0.'"$i"'"}]}}' >/dev/null
  echo "$n: netns $ns, eth0 10.99.0.$i, role=${role[$n]}"
done
k get nodes -L role -o wide

rx_packets() { ip -n "bpfchain-demo-$1" -j -s link show dev eth0 | jq '.[0].stats64.rx.packets'; }
declare -A rx_before
say "loading the counter kernel function on eth0 (XDP) of every node with role=edge"
for n in "${nodes[@]}"; do rx_before[$n]=$(rx_packets "$n"); done
for n in $(k get nodes -l role=edge -o jsonpath='{.items[*].metadata.name}'); do
  ip -n "bpfchain-demo-$n" link set dev eth0 xdpdrv obj build/bpf/counter.bpf.o sec xdp
  id=$(ip -n "bpfchain-demo-$n" -j -d link show dev eth0 | jq '.[0].xdp.prog.id')
  echo "$n: program counter_xdp attached to eth0, id $id"
done

say "traffic: node-3 pings node-1 (20 packets) and node-2 (5 packets)"
ip netns exec bpfchain-demo-node-3 ping -q -c 20 -i 0.05 10.99.0.1 | tail -2
ip netns exec bpfchain-demo-node-3 ping -q -c 5 -i 0.05 10.99.0.2 | tail -2

say "what the counters counted: every packet that reached eth0 (echo requests and ARP)"
echo "(RX SINCE LOAD is the kernel's own count for eth0 since the program was loaded)"
printf '%-8s %-6s %10s %10s %14s\n' NODE ROLE PACKETS BYTES "RX SINCE LOAD"
for n in "${nodes[@]}"; do
  ns="bpfchain-demo-$n"
  id=$(ip -n "$ns" -j -d link show dev eth0 | jq '.[0].xdp.prog.id // empty')
  rx=$(($(rx_packets "$n") - rx_before[$n]))
  if [[ -z $id ]]; then
    printf '%-8s %-6s %10s %10s %14s\n' "$n" "${role[$n]}" - - "$rx"
    continue
  fi
  map=$(for m in $(bpftool prog show id "$id" -j | jq '.map_ids[]'); do
    bpftool map show id "$m" -j; done | jq -r 'select(.name == "counter_stats") | .id')
  read -r packets bytes < <(bpftool map lookup id "$map" key 0 0 0 0 -j |
    jq -r '[.formatted.values[].value] | "\(map(.packets) | add) \(map(.bytes) | add)"')
  printf '%-8s %-6s %10s %10s %14s\n' "$n" "${role[$n]}" "$packets" "$bytes" "$rx"
done

say "done: removing the nodes and the control plane"

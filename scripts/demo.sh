#!/usr/bin/env bash
# The main job (see README): a Terway cluster on this machine. terway-lab
# starts vpcsim (an emulated Alibaba Cloud region with its OpenAPI, metadata
# service and a real Linux VPC fabric) and terwayd on two ECS instances; pods
# are wired by the real terway CNI plugin, run exactly as a container runtime
# runs it. Real packets then prove what the VPC does with pod addresses.
# Everything lives in network namespaces the lab creates and is removed at the
# end (also on failure or Ctrl-C). BUILD=<build dir> picks the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root (it builds network namespaces, veths, bridges and nftables)" >&2
  exit 1
fi

BUILD=${BUILD:-build}
LAB=$BUILD/cmd/terway-lab/terway-lab
CLI=$BUILD/cmd/terway-cli/terway-cli
VPCSIM=$BUILD/cmd/vpcsim/vpcsim
for b in "$LAB" "$CLI" "$VPCSIM" "$BUILD/cmd/terwayd/terwayd" "$BUILD/cmd/terway/terway"; do
  [ -x "$b" ] || { echo "demo: $b is missing; build first (make build, or BUILD=<dir>)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/terway-demo-XXXXXX)
LAB_DIR=$WORK/lab
WORLD=demo$(( $$ % 10000 ))
START=$(date +%s)

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
lab() { "$LAB" --lab "$LAB_DIR" "$@"; }
# Step 15's dual-stack cluster: a second lab, a world of its own.
LAB6_DIR=$WORK/lab6
WORLD6=dual$(( $$ % 10000 ))
lab6() { "$LAB" --lab "$LAB6_DIR" "$@"; }
state() { jq -r "$1" "$LAB_DIR/lab.json"; }
# An IPv6 address written out in full (socat prints peers so), for comparing.
expand6() {
  local a=${1#[}; a=${a%]}
  local head=$a tail="" n g out=""
  if [[ $a == *::* ]]; then head=${a%%::*}; tail=${a#*::}; fi
  local -a h=() t=() all=()
  [ -n "$head" ] && IFS=: read -ra h <<<"$head"
  [ -n "$tail" ] && IFS=: read -ra t <<<"$tail"
  all=("${h[@]}")
  if [[ $a == *::* ]]; then
    for ((n = ${#h[@]} + ${#t[@]}; n < 8; n++)); do all+=(0); done
    all+=("${t[@]}")
  fi
  for g in "${all[@]}"; do out+=$(printf '%04x:' "0x$g"); done
  echo "${out%:}"
}


cleanup() {
  local rc=$?
  set +e
  bold "Tear down: terway-lab down (DEL every pod, stop terwayd and vpcsim, destroy the world)"
  [ -f "$LAB_DIR/lab.json" ] && lab down | sed 's/^/   /'
  [ -f "$LAB6_DIR/lab.json" ] && lab6 down | sed 's/^/   /'
  left=$(ip netns list | grep -c -e "^${WORLD}-" -e "^${WORLD6}-" || true)
  rm -rf "$WORK"
  say "${left} namespaces of world ${WORLD} left; demo took $(( $(date +%s) - START )) s"
  [ $rc -eq 0 ] || say "demo FAILED (exit $rc); the messages above say where"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold "1. terway-lab up --nodes 2: an emulated Alibaba Cloud VPC with two ECS instances running terwayd"
# node2's CNI network asks eniip_virtual_type datapathv2: terwayd wires its pods with the
# eBPF datapath (step 7); node1 keeps veth + policy routing (step 8).
lab up --nodes 2 --instance-type ecs.g7.large,ecs.vpcsim.tiny --name "$WORLD" \
  --node-eniip-virtual-type node2=datapathv2 | sed 's/^/   /'
PORT=$(state .vpcsim.port)
say "vpcsim serves the ECS/VPC OpenAPI (signed requests), the metadata service and an admin API;"
say "each ECS instance is a network namespace whose eth0 is its primary ENI. terwayd runs inside"
say "each node's namespace, reads its identity and STS credentials from 100.100.100.200 and calls"
say "the API at 100.100.0.1 through the VPC, exactly as on ECS."

bold "2. Max pods per node, read from DescribeInstanceTypes over the signed API"
for t in ecs.g7.large ecs.vpcsim.tiny; do
  "$CLI" maxpods --instance-type "$t" --endpoint "http://127.0.0.1:$PORT" --region cn-hangzhou \
    --access-key "$(state .access_key)" --access-secret "$(state .access_secret)" | sed 's/^/   /'
done

bold "3. Pods: two per node, each set up by the real terway plugin (CNI ADD) run as a runtime runs it"
PODS=(default/web-1 default/web-2 shop/api-1 shop/api-2)
NODES=(node1 node1 node2 node2)
declare -A IP
for i in "${!PODS[@]}"; do
  IP[${PODS[$i]}]=$(lab pod add "${PODS[$i]}" --node "${NODES[$i]}" --labels app="${PODS[$i]#*/}")
  say "$(printf '%-14s on %-5s -> %s' "${PODS[$i]}" "${NODES[$i]}" "${IP[${PODS[$i]}]}")"
done

bold "4. What the cloud and the nodes look like now (terway-lab status)"
lab status | sed 's/^/   /'
say ""
say "Every pod address is a private IP of an ENI of its own node (a secondary ENI, ethN > 0):"
say "terwayd created the ENIs and assigned the IPs through the API, and keeps a warm pool of"
say "idle IPs for the next pods. No overlay: pods are plain VPC addresses."

bold "5. Connectivity matrix, proven by real packets (ping from each pod)"
HOST_IP=$(state '.hosts[0].ip')
HOST_NS=$(state '.hosts[0].netns')
TARGETS=("${PODS[@]}" host1)
IP[host1]=$HOST_IP
printf '   %-14s' "from \\ to"; for t in "${TARGETS[@]}"; do printf ' %-14s' "$t"; done; echo
fails=0
for s in "${PODS[@]}"; do
  printf '   %-14s' "$s"
  for t in "${TARGETS[@]}"; do
    if [ "$s" = "$t" ]; then printf ' %-14s' "-"; continue; fi
    if lab exec "$s" -- ping -c 1 -W 2 -q "${IP[$t]}" >/dev/null 2>&1; then
      printf ' %-14s' "ok"
    else
      printf ' %-14s' "FAIL"; fails=$((fails + 1))
    fi
  done
  echo
done
say "(host1 = ${HOST_IP}, an ECS instance without terwayd: any VM of the VPC)"
[ $fails -eq 0 ] || { say "$fails paths failed"; exit 1; }

bold "6. TCP across nodes keeps the pod's own address (no NAT, no tunnel)"
lab exec shop/api-2 -- socat TCP-LISTEN:8080,reuseaddr 'SYSTEM:echo $SOCAT_PEERADDR' &
SERVER=$!
seen=""
for _ in $(seq 1 50); do
  seen=$(lab exec default/web-1 -- socat -T 2 - "TCP:${IP[shop/api-2]}:8080" </dev/null 2>/dev/null || true)
  [ -n "$seen" ] && break
  sleep 0.1
done
wait "$SERVER" 2>/dev/null || true
say "default/web-1 (${IP[default/web-1]}) on node1 -> shop/api-2 (${IP[shop/api-2]}):8080 on node2"
say "the server saw the client as: ${seen:-nothing}"
[ "$seen" = "${IP[default/web-1]}" ] || { say "expected ${IP[default/web-1]}"; exit 1; }
n=0
for ns in $(state '.nodes[].netns') $(state '.pods[].netns'); do
  n=$((n + $(ip netns exec "$ns" ip -d -o link | grep -cE ' (vxlan|geneve|ipip|gre|gretap|sit) ' || true)))
done
say "encapsulation devices (vxlan/geneve/ipip/gre/sit) in nodes and pods: $n"

bold "7. node2 runs the eBPF datapath (eniip_virtual_type datapathv2, Terway's \"datapath v2\")"
N2_NS=$(state '.nodes[1].netns')
say "$(lab status | grep -A1 '^  node2' | tail -1 | sed 's/^ *//')"
say "tc programs in node2 (its ENI and each pod's host veth; bpftool net show):"
ip netns exec "$N2_NS" bpftool -j net show | jq -r '.[].tc[] | "     \(.devname) \(.kind) \(.name)"' | sort -u
fastpath() {  # node2's terwayd metric terway_ebpf_datapath_packets_total{path}
  ip netns exec "$N2_NS" curl -s --max-time 5 "http://127.0.0.1:$(cat "$(state '.nodes[1].dir')/metrics.port")/metrics" |
    sed -n 's/^terway_ebpf_datapath_packets_total{path="\([a-z_]*\)"} \(.*\)$/\1=\2/p' | tr '\n' ' '
}
send100k() {  # 100 kB over one TCP connection from pod $1 to shop/api-2, which discards it
  lab exec shop/api-2 -- socat -u TCP-LISTEN:8081,reuseaddr OPEN:/dev/null &
  local server=$! sent=no
  for _ in $(seq 1 50); do
    if head -c 100000 /dev/zero | lab exec "$1" -- socat -u - "TCP:${IP[shop/api-2]}:8081" 2>/dev/null; then
      sent=yes; break
    fi
    sleep 0.1
  done
  [ $sent = yes ] || { kill "$server" 2>/dev/null; say "$1 could not reach shop/api-2:8081"; exit 1; }
  wait "$server" 2>/dev/null || true
}
BEFORE=$(fastpath)
send100k default/web-1
send100k shop/api-1
AFTER=$(fastpath)
say "100 kB over TCP from web-1 (node1) and from api-1 (node2) to api-2 (node2); node2's program counters:"
say "  before: $BEFORE"
say "  after:  $AFTER"
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
for path in pod_to_pod eni_to_pod pod_to_eni; do
  [ "$(get "$AFTER" $path)" -gt "$(get "$BEFORE" $path)" ] || { say "expected $path to rise"; exit 1; }
done
say "pod_to_pod (same node: peer to peer) and eni_to_pod/pod_to_eni (across nodes) rose: the"
say "packets moved between pods and the ENI in tc, bypassing the node's routing stack (TCP and"
say "UDP; ICMP, and flows the node's conntrack tracks such as Service NAT, take the stack)"

bold "8. Why terwayd routes each pod by policy: the VPC delivers an IP only through the ENI holding it"
P=default/web-2
PIP=${IP[$P]}
NODE_NS=$(state '.nodes[0].netns')
RULE=$(ip netns exec "$NODE_NS" ip rule show | grep "from $PIP lookup" | head -1)
PREF=${RULE%%:*}
TABLE=${RULE##* }
say "node1's rule for $P: '$RULE' (its replies leave through its own ENI)"
if ip netns exec "$HOST_NS" ping -c 1 -W 2 -q "$PIP" >/dev/null; then
  say "[ok]   host1 -> $PIP: answered"
else
  say "[FAIL] host1 -> $PIP should answer"; exit 1
fi
ip netns exec "$NODE_NS" ip rule del pref "$PREF" from "$PIP" lookup "$TABLE"
if ip netns exec "$HOST_NS" ping -c 1 -W 1 -q "$PIP" >/dev/null; then
  ip netns exec "$NODE_NS" ip rule add pref "$PREF" from "$PIP" lookup "$TABLE"
  say "[FAIL] without the rule the replies should be dropped"; exit 1
fi
say "[ok]   rule removed: replies leave through eth0, whose ENI does not hold $PIP; the VPC"
say "       drops them (anti-spoofing), exactly as on Alibaba Cloud"
ip netns exec "$NODE_NS" ip rule add pref "$PREF" from "$PIP" lookup "$TABLE"
ip netns exec "$HOST_NS" ping -c 1 -W 2 -q "$PIP" >/dev/null && say "[ok]   rule restored: answered again"

bold "9. The same cluster through the Kubernetes API (kubectl against the lab's API stand-in)"
KUBECTL=$(command -v kubectl || true)
[ -n "$KUBECTL" ] || { say "kubectl is missing (make deps installs it)"; exit 1; }
kc() { "$KUBECTL" --kubeconfig "$(state .control_plane.kubeconfig)" --cache-dir "$WORK/kube-cache" "$@"; }
kc get nodes -o custom-columns='NAME:.metadata.name,TYPE:.metadata.labels.node\.kubernetes\.io/instance-type,PODS:.status.capacity.pods,INTERNAL-IP:.status.addresses[1].address' |
  sed 's/^/   /'
kc get pods -A -o custom-columns='NAMESPACE:.metadata.namespace,NAME:.metadata.name,NODE:.spec.nodeName,IP:.status.podIP,PHASE:.status.phase' |
  sed 's/^/   /'
say "terwayd writes back what Terway writes: node annotation k8s.aliyun.com/max-available-ip ="
say "$(kc get node node1 -o jsonpath='{.metadata.annotations.k8s\.aliyun\.com/max-available-ip}') on node1, and each pod's" \
    "k8s.aliyun.com/pod-ips (shop/api-1: $(kc get pod -n shop api-1 -o jsonpath='{.metadata.annotations.k8s\.aliyun\.com/pod-ips}'))"

bold "10. NetworkPolicy, enforced by terwayd with nftables on each node"
cat >"$WORK/policy.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api-from-web-1
  namespace: shop
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: default}}
      podSelector: {matchLabels: {app: web-1}}
YAML
kc apply -f "$WORK/policy.yaml" | sed 's/^/   /'
say "shop's pods now take traffic only from default/web-1 (and their own node):"
reach() {  # from-pod to-ip: polls briefly, as enforcement follows the API within ~100 ms
  local want=$3
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    if lab exec "$1" -- ping -c 1 -W 1 -q "$2" >/dev/null 2>&1; then got=ok; else got=blocked; fi
    [ "$got" = "$want" ] && break
  done
  echo "$got"
}
for s in default/web-1 default/web-2; do
  for t in shop/api-1 shop/api-2; do
    got=$(reach "$s" "${IP[$t]}" "$([ "$s" = default/web-1 ] && echo ok || echo blocked)")
    say "$(printf '%-14s -> %-12s %s' "$s" "$t" "$got")"
    want=$([ "$s" = default/web-1 ] && echo ok || echo blocked)
    [ "$got" = "$want" ] || { say "expected $want"; exit 1; }
  done
done
say "terway-cli policy explain, from the model node2's kernel enforces:"
"$CLI" policy explain --socket "$(state '.nodes[1].socket')" --from default/web-2 --to shop/api-1 --port 80/TCP |
  sed 's/^/     /'
kc delete -f "$WORK/policy.yaml" | sed 's/^/   /'

bold "11. The node's cloud identity stays with the node (eni_conf metadata_credentials_for_pods: deny, the default)"
MD=http://100.100.100.200/latest/meta-data
ROLE=$(ip netns exec "$(state '.nodes[0].netns')" curl -s --max-time 5 "$MD/ram/security-credentials/")
say "node1 itself (terwayd's namespace) reads its RAM role: '$ROLE'"
say "default/web-1 reads its node's instance-id: $(lab exec default/web-1 -- curl -s --max-time 5 "$MD/instance-id")"
code=$(lab exec default/web-1 -- curl -s -o "$WORK/creds" -w '%{http_code}' --max-time 5 \
  "$MD/ram/security-credentials/$ROLE")
say "default/web-1 asks for that role's STS credentials: HTTP $code"
fold -s -w 92 "$WORK/creds" | sed 's/^/     /'
[ "$code" = 403 ] || { say "expected 403"; exit 1; }
for t in "ram/security-credentials/" "%72am/security-credentials/$ROLE" "ram%2Fsecurity-credentials%2F$ROLE"; do
  c=$(lab exec default/web-1 -- curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$MD/$t")
  say "  $t -> HTTP $c"
  [ "$c" != 200 ] || { say "expected a refusal"; exit 1; }
done
lab pod add default/needs-role --node node1 --annotations k8s.aliyun.com/allow-node-ram-role=true >/dev/null
key=$(lab exec default/needs-role -- curl -s --max-time 5 "$MD/ram/security-credentials/$ROLE" | jq -r .AccessKeyId)
say "default/needs-role, annotated k8s.aliyun.com/allow-node-ram-role: \"true\", gets them: AccessKeyId $key"
[ "${key#STS.}" != "$key" ] || { say "expected STS credentials"; exit 1; }
lab pod del default/needs-role >/dev/null

bold "12. Per-pod bandwidth from the pod's annotation, changed while the pod runs"
kc annotate pod -n shop api-1 kubernetes.io/egress-bandwidth=20M >/dev/null
API1_NS=$(state '.pods[] | select(.namespace == "shop" and .name == "api-1") | .netns')
WEB1_NS=$(state '.pods[] | select(.namespace == "default" and .name == "web-1") | .netns')
# terwayd on node2 logs the new limit once its watch saw the annotation (bounded poll).
for _ in $(seq 1 100); do
  grep -q "bandwidth of pod shop/api-1 is now" "$(state '.nodes[1].log')" && break
  sleep 0.1
done
ip netns exec "$WEB1_NS" timeout 30 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
IPERF=$!
for _ in $(seq 1 100); do
  ip netns exec "$WEB1_NS" ss -Hltn 'sport = :5201' | grep -q 5201 && break
  sleep 0.05
done
MBIT=$(ip netns exec "$API1_NS" iperf3 -c "${IP[default/web-1]}" -p 5201 -t 3 -O 1 -J 2>/dev/null |
  jq '.end.sum_received.bits_per_second / 1e6 | floor' || echo "?")
wait "$IPERF" 2>/dev/null || true
say "kubernetes.io/egress-bandwidth=20M on shop/api-1: iperf3 out of it measured ${MBIT} Mbit/s"
kc annotate pod -n shop api-1 kubernetes.io/egress-bandwidth- >/dev/null
say "(annotation removed again: terwayd removes the shaping)"

bold "13. A full node refuses the next pod, with the reason (node2 is ecs.vpcsim.tiny)"
MAX=$(state '.nodes[1].max_pods')
k=0
while [ "$(state '[.pods[] | select(.node == "node2")] | length')" -lt "$MAX" ]; do
  k=$((k + 1)); lab pod add "fill/pod-$k" --node node2 >/dev/null
done
say "node2 holds $MAX pods (its max: 2 secondary ENIs x 3 IPs), spread over its ENIs:"
lab status | sed -n '/^  node2/,/^$/p' | sed 's/^/   /'
say "one more:"
if lab pod add fill/one-too-many --node node2 2>"$WORK/refused"; then
  say "[FAIL] the node should be full"; exit 1
fi
fold -s -w 96 "$WORK/refused" | sed 's/^/     /'
lab pod del fill/pod-1 >/dev/null
say "after deleting fill/pod-1: fill/one-too-many gets $(lab pod add fill/one-too-many --node node2)"

bold "14. What the cloud API served (vpcsim's per-action counters)"
"$VPCSIM" stats --state "$(state .vpcsim.state)" |
  jq -r '.actions | to_entries[] | "   \(.key): \(.value.calls) calls, \(.value.errors) errors"'

bold "15. Dual stack: terway-lab up --ip-stack dual (eni_conf \"ip_stack\": \"dual\"): each pod an IPv4 and an IPv6 of one ENI"
lab6 up --nodes 2 --vpc-hosts 0 --name "$WORLD6" --ip-stack dual | sed 's/^/   /'
V4=(); V6=()
for n in 1 2; do
  V4+=("$(lab6 pod add "default/dual-$n" --node "node$n")")
  V6+=("$(lab6 exec "default/dual-$n" -- ip -6 -o addr show dev eth0 scope global | awk '{print $4}' | cut -d/ -f1)")
  say "default/dual-$n on node$n: ${V4[-1]} and ${V6[-1]}"
done
lab6 exec default/dual-2 -- socat TCP6-LISTEN:8080,reuseaddr 'SYSTEM:echo $SOCAT_PEERADDR' &
SERVER=$!
seen=""
for _ in $(seq 1 50); do
  seen=$(lab6 exec default/dual-1 -- socat -T 2 - "TCP6:[${V6[1]}]:8080" </dev/null 2>/dev/null || true)
  [ -n "$seen" ] && break
  sleep 0.1
done
wait "$SERVER" 2>/dev/null || true
say "TCP over IPv6 from dual-1 (node1) to [${V6[1]}]:8080 on node2; the server saw the client as ${seen:-nothing}"
[ -n "$seen" ] && [ "$(expand6 "$seen")" = "$(expand6 "${V6[0]}")" ] ||
  { say "expected ${V6[0]}"; exit 1; }
say "ping -6 across nodes: $(lab6 exec default/dual-1 -- ping -6 -c 2 -W 3 "${V6[1]}" | grep -o '[0-9]* received')"
say "the cloud's view (DescribeNetworkInterfaces: each ENI's private IPs and Ipv6Sets, and who holds them):"
lab6 status | sed -n '/^  node1/,$p' | sed 's/^/   /'

#!/usr/bin/env bash
# The main job (see README): an emulated Alibaba Cloud VPC on this machine,
# terwayd managing a node's ENIs through the real signed OpenAPI, and real
# packets proving how the VPC delivers addresses. Everything it creates lives
# in network namespaces it makes, and is removed at the end (also on failure
# or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root (it builds network namespaces, veths, bridges and nftables)" >&2
  exit 1
fi

BUILD=${BUILD:-build}
VPCSIM=$BUILD/cmd/vpcsim/vpcsim
TERWAYD=$BUILD/cmd/terwayd/terwayd
CLI=$BUILD/cmd/terway-cli/terway-cli
WORK=$(mktemp -d /tmp/terway-demo-XXXXXX)
WORLD=demo$(( $$ % 10000 ))
VSW=vsw-${WORLD}a
NODE1=i-${WORLD}n1
NODE2=i-${WORLD}n2
NS1=${WORLD}-${NODE1}
NS2=${WORLD}-${NODE2}
VPCSIM_PID=""
TERWAYD_PID=""

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }

cleanup() {
  set +e
  [ -n "$TERWAYD_PID" ] && kill "$TERWAYD_PID" 2>/dev/null && wait "$TERWAYD_PID" 2>/dev/null
  [ -n "$VPCSIM_PID" ] && kill "$VPCSIM_PID" 2>/dev/null && wait "$VPCSIM_PID" 2>/dev/null
  "$VPCSIM" destroy --state "$WORK/state" >/dev/null 2>&1
  left=$(ip netns list | grep -c "^${WORLD}-" || true)
  rm -rf "$WORK"
  bold "Torn down: vpcsim stopped, world destroyed, ${left} namespaces of it left"
}
trap cleanup EXIT INT TERM

cat > "$WORK/world.yaml" <<YAML
name: ${WORLD}
region: cn-hangzhou
zones: [cn-hangzhou-h]
vpc:
  id: vpc-${WORLD}
  cidr: 198.18.0.0/16
  vswitches:
    - id: ${VSW}
      zone: cn-hangzhou-h
      cidr: 198.18.0.0/24
instances:
  - id: ${NODE1}
    instance_type: ecs.g7.large
    vswitch: ${VSW}
access_keys:
  - id: LTAIdemo
    secret: demo-secret
ram_role: TerwayRole
security_group: sg-${WORLD}
sts_ttl_seconds: 3600
metadata_hardened: false
YAML

bold "1. Start vpcsim: an emulated Alibaba Cloud region (ECS/VPC OpenAPI, metadata, a real VPC fabric)"
"$VPCSIM" serve --world "$WORK/world.yaml" --state "$WORK/state" --listen 127.0.0.1:0 \
  --port-file "$WORK/port" --fabric linux >"$WORK/vpcsim.log" 2>&1 &
VPCSIM_PID=$!
for _ in $(seq 1 200); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || { cat "$WORK/vpcsim.log"; exit 1; }
PORT=$(cat "$WORK/port")
export VPCSIM_ENDPOINT=127.0.0.1:$PORT
say "OpenAPI, metadata and admin on 127.0.0.1:$PORT; inside the VPC the API is 100.100.0.1 and"
say "the metadata service 100.100.100.200, as on ECS. VPC 198.18.0.0/16, vSwitch ${VSW} 198.18.0.0/24."

bold "2. Add a second ECS instance at run time (each instance is a network namespace, eth0 = its primary ENI)"
"$VPCSIM" instance add --type ecs.g7.large --vswitch "$VSW" --id "$NODE2" | sed 's/^/   /'
say "namespaces: $(ip netns list | awk '{print $1}' | grep "^${WORLD}-" | tr '\n' ' ')"

bold "3. Max pods of the node's instance type, read from DescribeInstanceTypes over the signed API"
"$CLI" maxpods --instance-type ecs.g7.large --endpoint "http://127.0.0.1:$PORT" --region cn-hangzhou \
  --access-key LTAIdemo --access-secret demo-secret | sed 's/^/   /'

bold "4. Start terwayd on ${NODE1}, inside its namespace, with a warm pool of 5 IPs"
cat > "$WORK/eni.json" <<JSON
{
  "version": "1",
  "min_pool_size": 5,
  "max_pool_size": 8,
  "vswitches": {"cn-hangzhou-h": ["${VSW}"]},
  "security_group": "sg-${WORLD}",
  "eni_tags": {"demo": "true"},
  "ecs_endpoint": "http://100.100.0.1",
  "vpc_endpoint": "http://100.100.0.1",
  "credential_source": "ram_role"
}
JSON
say "eni_conf: Terway's keys; endpoints are vpcsim's in-VPC address; credentials come from"
say "the instance's RAM role through the metadata service (STS, SecurityToken signed)."
ip netns exec "$NS1" "$TERWAYD" --config "$WORK/eni.json" --socket "$WORK/eni.socket" \
  --state "$WORK/terwayd.db" --metrics-listen 127.0.0.1:0 >"$WORK/terwayd.log" 2>&1 &
TERWAYD_PID=$!
ready=0
for _ in $(seq 1 300); do
  if "$CLI" status --socket "$WORK/eni.socket" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
[ $ready -eq 1 ] || { tail -30 "$WORK/terwayd.log"; exit 1; }
say "terwayd: $("$CLI" status --socket "$WORK/eni.socket")"
for _ in $(seq 1 300); do
  idle=$("$CLI" enis --state "$WORK/terwayd.db" 2>/dev/null | grep -v "primary ENI" | \
         sed -n 's/.* \([0-9]*\) idle$/\1/p' | head -1 || true)
  [ "${idle:-0}" -ge 5 ] && break
  sleep 0.1
done
say "the pool created an ENI, attached it (async: Attaching -> InUse) and assigned IPs:"
"$CLI" enis --state "$WORK/terwayd.db" | sed 's/^/     /'

bold "5. The cloud's view (vpcsim describe): the instances, their ENIs and private IPs"
"$VPCSIM" describe | sed 's/^/   /'

bold "6. Real packets: the VPC delivers a private IP only through the ENI that holds it"
ENI_LINE=$("$CLI" enis --state "$WORK/terwayd.db" | grep -v "primary ENI" | head -1 || true)
[ -n "$ENI_LINE" ] || { echo "demo: terwayd created no ENI; its log:"; tail -30 "$WORK/terwayd.log"; exit 1; }
ENI_ID=$(echo "$ENI_LINE" | awk '{print $1}')
ENI_MAC=$(echo "$ENI_LINE" | sed -n 's/.*mac=\([^ ]*\).*/\1/p')
POD_IP=$("$CLI" ips --state "$WORK/terwayd.db" | awk -v e="$ENI_ID" '$2 == e && $3 == "idle" && !/primary/ {print $1; exit}')
NODE2_IP=$(ip netns exec "$NS2" ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
DEV=$(ip netns exec "$NS1" ip -o link | grep -i "$ENI_MAC" | awk -F': ' '{print $2}' | cut -d@ -f1)
say "secondary IP $POD_IP of $ENI_ID (link $DEV in $NODE1, found by MAC $ENI_MAC)"
ip netns exec "$NS1" ip link set "$DEV" up
ip netns exec "$NS1" ip addr add "$POD_IP/32" dev "$DEV"
ip netns exec "$NS1" ip route add default via 198.18.0.253 dev "$DEV" onlink table 1001
ip netns exec "$NS1" ip rule add from "$POD_IP" lookup 1001 pref 1001
if ip netns exec "$NS2" ping -c 2 -W 1 -q "$POD_IP" >/dev/null; then
  say "[ok]   $NODE2 ($NODE2_IP) -> $POD_IP on $DEV, replies leave through $DEV: reachable"
else
  say "[FAIL] $POD_IP should be reachable through its ENI"; exit 1
fi
ip netns exec "$NS1" ip rule del from "$POD_IP" lookup 1001 pref 1001
if ip netns exec "$NS2" ping -c 2 -W 1 -q "$POD_IP" >/dev/null; then
  say "[FAIL] replies through eth0 should be dropped"; exit 1
else
  say "[ok]   without the policy-routing rule the replies leave through eth0, whose ENI does"
  say "       not hold $POD_IP: the VPC drops them (anti-spoofing), exactly as on Alibaba Cloud."
  say "       This is why terwayd's datapath routes each pod's traffic out of its own ENI."
fi
ip netns exec "$NS1" ip addr del "$POD_IP/32" dev "$DEV"
ip netns exec "$NS1" ip link set "$DEV" down
ip netns exec "$NS1" ip route flush table 1001 2>/dev/null || true
say "no tunnel or encapsulation device anywhere: $(ip netns exec "$NS1" ip -d link | grep -cE 'vxlan|geneve|ipip|gre' || true) found"

bold "7. What the cloud API served (vpcsim's per-action counters)"
"$VPCSIM" stats | jq -r '.actions | to_entries[] | "   \(.key): \(.value.calls) calls, \(.value.errors) errors"'

bold "8. Stop terwayd and tear the world down"
kill "$TERWAYD_PID"; wait "$TERWAYD_PID" 2>/dev/null || true; TERWAYD_PID=""
say "terwayd stopped (its ENI and IPs stay in the cloud for its restart; the world goes with them)."

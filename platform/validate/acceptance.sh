#!/usr/bin/env bash
# The acceptance subset a lab host must pass (PASS=6 FAIL=0), each check really made or NOT_RUN:
#
#   tier1-health        the Tier-1 health endpoint answers: an http(s) URL (2xx) or command:CMD
#                       (exit 0); not run without --tier1-health
#   digest-alignment    `airlock align` on the runtime: the running digest equals the manifest's
#                       pin; not run without --runtime
#   microvm-boot        a Tier-2 microVM boots under KVM (Firecracker with an ELF vmlinux, else
#                       QEMU): the kernel's banner on its console, and with --rootfs the root
#                       filesystem mounted; not run without /dev/kvm, a hypervisor or a kernel
#   egress-default-deny in a sandbox network namespace joined by a veth to a lab "outside"
#                       namespace, `airlock egress render`'s ruleset (a lab policy allowing one
#                       name on 443, DNS only to the lab resolver) is loaded with nft; a direct
#                       connection to an address the policy does not allow, the allowed address
#                       on another port and a DNS question to another server must be dropped,
#                       while the allowed address and the resolver still answer; every probe
#                       is first shown to get through without the ruleset
#   dns-exfiltration    questions carrying a random marker sent from the sandbox to a DNS server
#                       other than the resolver (udp/53, tcp/53, udp/5353, and udp/53 at the
#                       allowed address) get no answer and never reach that server's log, while
#                       the same kind of question did reach it before the ruleset was loaded.
#                       Exfiltration through the allowed resolver itself is that resolver's
#                       policy and is not checked here.
#   teardown-residue    after teardown, nothing this run made remains: its namespaces, links,
#                       processes and scratch files are gone, and the host's links and nftables
#                       tables are as before; not run when this run made nothing
#   The network checks need root (CAP_NET_ADMIN), ip, nft, Node and a built airlock; without
#   them they are NOT_RUN with the reason. They use only the lab namespaces, never the host's
#   network.
#
# Options (or environment):
#   --tier1-health URL|command:CMD  ACCEPTANCE_TIER1_HEALTH
#   --runtime RUNTIME               ACCEPTANCE_RUNTIME (as `airlock align --runtime`)
#   --image NAME                    ACCEPTANCE_IMAGE (default: every image with the channel)
#   --channel NAME                  ACCEPTANCE_CHANNEL (default: stable)
#   --repo DIR                      ACCEPTANCE_REPO: the fleet repository `airlock align` reads
#   --kernel FILE                   ACCEPTANCE_KERNEL (default: /boot/vmlinuz-$(uname -r))
#   --rootfs FILE                   ACCEPTANCE_ROOTFS (raw image, mounted read-only)
#   --egress-policy FILE            ACCEPTANCE_EGRESS_POLICY: the EgressPolicy the lab renders
#                                   (default: allow allowed.acceptance.test on 443); the lab
#                                   resolves allowed.acceptance.test to 198.51.100.2
#   --boot-timeout SECS             ACCEPTANCE_BOOT_TIMEOUT (default 60)
#   --timeout SECS                  ACCEPTANCE_TIMEOUT: total deadline (default 180)
#   AIRLOCK_NODE                    the node binary (default: airlock's own, else node on PATH)
#   AIRLOCK_TRUST_ANCHOR            passed on to `airlock align`
#
# Output: one line per check, then `PASS=N FAIL=M NOT_RUN=K`; exit 1 if any check failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
airlock_root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

tier1=${ACCEPTANCE_TIER1_HEALTH:-}
runtime=${ACCEPTANCE_RUNTIME:-}
image=${ACCEPTANCE_IMAGE:-}
channel=${ACCEPTANCE_CHANNEL:-stable}
repo=${ACCEPTANCE_REPO:-}
kernel=${ACCEPTANCE_KERNEL:-}
rootfs=${ACCEPTANCE_ROOTFS:-}
egress_policy=${ACCEPTANCE_EGRESS_POLICY:-}
boot_timeout=${ACCEPTANCE_BOOT_TIMEOUT:-60}
total_timeout=${ACCEPTANCE_TIMEOUT:-180}
args=("$@")
while [ "$#" -gt 0 ]; do
  case $1 in
    --tier1-health) tier1=${2:?--tier1-health needs a URL or command:CMD}; shift 2 ;;
    --runtime) runtime=${2:?--runtime needs a runtime}; shift 2 ;;
    --image) image=${2:?--image needs a name}; shift 2 ;;
    --channel) channel=${2:?--channel needs a name}; shift 2 ;;
    --repo) repo=${2:?--repo needs a folder}; shift 2 ;;
    --kernel) kernel=${2:?--kernel needs a file}; shift 2 ;;
    --rootfs) rootfs=${2:?--rootfs needs a file}; shift 2 ;;
    --egress-policy) egress_policy=${2:?--egress-policy needs a file}; shift 2 ;;
    --boot-timeout) boot_timeout=${2:?--boot-timeout needs seconds}; shift 2 ;;
    --timeout) total_timeout=${2:?--timeout needs seconds}; shift 2 ;;
    -h | --help) sed -n '2,47p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "acceptance: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$boot_timeout" "$total_timeout"; do
  case $n in '' | *[!0-9]*) echo "acceptance: timeouts are whole seconds, not '$n'" >&2; exit 2 ;; esac
done

validate_supervise "$total_timeout" "$0" "${args[@]}"

# ---- the child, under the deadline ----
scratch=$(mktemp -d "${TMPDIR:-/tmp}/airlock-acceptance.XXXXXX")
made_something=0
netns_sbx="airlock-acc-$$-sbx"
netns_out="airlock-acc-$$-out"
server_pid=''

teardown() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  ip netns del "$netns_sbx" 2>/dev/null || true
  ip netns del "$netns_out" 2>/dev/null || true
  rm -rf "$scratch"
}
trap teardown EXIT
trap 'exit 143' TERM INT

# What the host had before this run, to compare after teardown. Only what this run could have
# made is compared (links named aa-*, nftables tables), so other work on the host is no residue.
host_links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep '^aa-' | sort || true; }
host_tables() { nft list tables 2>/dev/null | sort || true; }
host_links_before=$(host_links)
host_tables_before=$(host_tables)

node_bin=${AIRLOCK_NODE:-}
if [ -z "$node_bin" ]; then
  if [ -x "$airlock_root/node_modules/node/bin/node" ]; then
    node_bin="$airlock_root/node_modules/node/bin/node"
  else
    node_bin=$(command -v node || true)
  fi
fi
airlock_built=0
if [ -n "$node_bin" ] && [ -f "$airlock_root/dist/commands/align.js" ]; then airlock_built=1; fi
airlock() { "$node_bin" "$airlock_root/bin/run.js" "$@"; }

# ---- tier1-health ----
if [ -z "$tier1" ]; then
  check_not_run tier1-health "no Tier-1 health endpoint given (--tier1-health URL or command:CMD)"
elif [[ $tier1 == command:* ]]; then
  cmd=${tier1#command:}
  rc=0
  out=$(timeout -k 2 15 bash -c "$cmd" 2>&1 </dev/null) || rc=$?
  if [ "$rc" = 0 ]; then
    check_pass tier1-health "'$cmd' exited 0: $(printf '%s' "$out" | tail -n 1)"
  else
    check_fail tier1-health "'$cmd' exited $rc$( [ "$rc" = 124 ] && echo ' (timed out after 15s)'): $(printf '%s' "$out" | tail -n 1)"
  fi
elif [[ $tier1 == http://* || $tier1 == https://* ]]; then
  if ! command -v curl >/dev/null 2>&1; then
    check_not_run tier1-health "curl is not installed, so $tier1 cannot be asked"
  else
    rc=0
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --proto '=http,https' "$tier1" 2>"$scratch/curl.err") || rc=$?
    if [ "$rc" = 0 ] && [[ $code == 2?? ]]; then
      check_pass tier1-health "GET $tier1 answered HTTP $code"
    elif [ "$rc" = 0 ]; then
      check_fail tier1-health "GET $tier1 answered HTTP $code, not 2xx"
    else
      check_fail tier1-health "GET $tier1 failed (curl exit $rc): $(head -c 200 "$scratch/curl.err")"
    fi
  fi
else
  check_fail tier1-health "--tier1-health '$tier1' is neither an http(s) URL nor command:CMD"
fi

# ---- digest-alignment ----
if [ -z "$runtime" ]; then
  check_not_run digest-alignment "no runtime given (--runtime podman|containerd|file:PATH|command:CMD), so there is no running digest to compare"
elif [ "$airlock_built" = 0 ]; then
  check_not_run digest-alignment "airlock is not built here (no $airlock_root/dist or no node); run npm run build"
else
  align_args=(align)
  if [ -n "$image" ]; then align_args+=("$image"); fi
  align_args+=(--runtime "$runtime" --channel "$channel")
  if [ -n "$repo" ]; then align_args+=(--repo "$repo"); fi
  rc=0
  out=$(timeout -k 2 60 "$node_bin" "$airlock_root/bin/run.js" "${align_args[@]}" 2>&1 </dev/null) || rc=$?
  summary=$(printf '%s' "$out" | sed 's/^ *//; s/  */ /g' | paste -sd ';' -)
  if [ "$rc" = 0 ]; then
    check_pass digest-alignment "airlock align (${channel}) on $runtime: ${summary:-$out}"
  else
    check_fail digest-alignment "airlock align (${channel}) on $runtime exited $rc: ${summary:-$out}"
  fi
fi

# ---- microvm-boot ----
if [ -z "$kernel" ]; then kernel=$(validate_default_kernel); fi
validate_boot_guest "$kernel" "$rootfs" "$boot_timeout" "$scratch"
case $VALIDATE_BOOT_STATUS in
  pass) check_pass microvm-boot "$VALIDATE_BOOT_DETAIL" ;;
  fail) check_fail microvm-boot "$VALIDATE_BOOT_DETAIL" ;;
  *) check_not_run microvm-boot "$VALIDATE_BOOT_DETAIL" ;;
esac
if [ "$VALIDATE_BOOT_STATUS" != not_run ]; then made_something=1; fi

# ---- the egress lab: egress-default-deny and dns-exfiltration ----
lab_missing=()
if [ "$(id -u)" != 0 ]; then lab_missing+=("not root: network namespaces and nftables need CAP_NET_ADMIN"); fi
command -v ip >/dev/null 2>&1 || lab_missing+=("ip (iproute2) is not installed")
command -v nft >/dev/null 2>&1 || lab_missing+=("nft (nftables) is not installed")
if [ "$airlock_built" = 0 ]; then lab_missing+=("airlock is not built here (no dist/ or no node); run npm run build"); fi

lab_error=''
if [ "${#lab_missing[@]}" = 0 ]; then
  lab_error=$(
    {
      ip netns add "$netns_sbx" &&
        ip netns add "$netns_out" &&
        ip -n "$netns_sbx" link add aa-sbx type veth peer name aa-out netns "$netns_out" &&
        ip -n "$netns_sbx" addr add 198.51.100.10/24 dev aa-sbx &&
        ip -n "$netns_out" addr add 198.51.100.2/24 dev aa-out &&
        ip -n "$netns_out" addr add 198.51.100.3/24 dev aa-out &&
        ip -n "$netns_out" addr add 198.51.100.53/24 dev aa-out &&
        ip -n "$netns_out" addr add 198.51.100.66/24 dev aa-out &&
        ip -n "$netns_sbx" link set lo up &&
        ip -n "$netns_out" link set lo up &&
        ip -n "$netns_sbx" link set aa-sbx up &&
        ip -n "$netns_out" link set aa-out up
    } 2>&1
  ) || lab_missing+=("could not build the lab network namespaces: ${lab_error:-ip failed}")
  if ip netns list 2>/dev/null | grep -q "^airlock-acc-$$-"; then made_something=1; fi
fi

# Dropped packets are waited for this long; an answer on the veth comes in milliseconds, so a slow
# machine has a wide margin before an allowed probe would look blocked.
probe_timeout_ms=2500
probes() { ip netns exec "$netns_sbx" "$node_bin" "$here/netprobe.mjs" probe "$probe_timeout_ms" "$@" 2>&1; }
# "ID reached|blocked …" lines → the status of ID
probe_status() { printf '%s\n' "$1" | awk -v id="$2" '$1 == id {print $2}'; }

if [ "${#lab_missing[@]}" = 0 ]; then
  ip netns exec "$netns_out" "$node_bin" "$here/netprobe.mjs" serve "$scratch/server.log" >"$scratch/server.out" 2>&1 </dev/null &
  server_pid=$!
  for _ in $(seq 1 50); do
    if grep -q ready "$scratch/server.out" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if ! grep -q ready "$scratch/server.out" 2>/dev/null; then
    lab_missing+=("the lab servers did not start: $(head -c 200 "$scratch/server.out")")
  fi
fi

egress_error=''
if [ "${#lab_missing[@]}" = 0 ]; then
  marker_before="m$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  marker="x$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  blocked_set=(
    direct:tcp:198.51.100.3:443
    port:tcp:198.51.100.2:8080
    dns-other:dns-udp:198.51.100.66:53:probe.acceptance.test
    dns-other-tcp:dns-tcp:198.51.100.66:53:probe.acceptance.test
  )
  allowed_set=(
    allowed:tcp:198.51.100.2:443
    resolver:dns-udp:198.51.100.53:53:allowed.acceptance.test
  )
  exfil_set() {
    printf '%s\n' \
      "exfil-udp:dns-udp:198.51.100.66:53:$1.exfil.acceptance.test" \
      "exfil-tcp:dns-tcp:198.51.100.66:53:$1.exfil.acceptance.test" \
      "exfil-5353:dns-udp:198.51.100.66:5353:$1.exfil.acceptance.test" \
      "exfil-allowed-host:dns-udp:198.51.100.2:53:$1.exfil.acceptance.test"
  }
  mapfile -t exfil_before < <(exfil_set "$marker_before")
  mapfile -t exfil_after < <(exfil_set "$marker")

  # 1. Without the ruleset every probe gets through: the lab carries traffic, so a probe
  #    that fails later was stopped by the ruleset, not by a broken lab.
  before=$(probes "${blocked_set[@]}" "${allowed_set[@]}" "${exfil_before[@]}")
  not_through=$(printf '%s\n' "$before" | awk '$2 != "reached"' | tr '\n' ';')
  if [ -n "$not_through" ]; then
    egress_error="without the ruleset the lab did not carry traffic, so nothing could be concluded: $not_through"
  elif ! grep -q "$marker_before" "$scratch/server.log"; then
    egress_error="without the ruleset the lab DNS server logged no question carrying the marker"
  fi
fi
if [ "${#lab_missing[@]}" = 0 ] && [ -z "$egress_error" ]; then
  # 2. The ruleset airlock renders for a lab policy, loaded in the sandbox namespace.
  if [ -n "$egress_policy" ]; then
    cp -- "$egress_policy" "$scratch/egress.yaml"
  else
    cat >"$scratch/egress.yaml" <<'EOF'
apiVersion: airlock/v1
kind: EgressPolicy
metadata:
  name: acceptance-lab
  description: one allowed name on 443; DNS only to the lab resolver
spec:
  profile: restrictive
  allow:
    - allowed.acceptance.test
  ports: [443]
EOF
  fi
  printf '{"allowed.acceptance.test": ["198.51.100.2"]}\n' >"$scratch/answers.json"
  rc=0
  airlock egress render --policy "$scratch/egress.yaml" --resolve "$scratch/answers.json" --resolver 198.51.100.53 \
    >"$scratch/egress.nft" 2>"$scratch/render.err" </dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    egress_error="airlock egress render exited $rc: $(head -c 300 "$scratch/render.err")"
  elif ! load_error=$(ip netns exec "$netns_sbx" nft -f "$scratch/egress.nft" 2>&1); then
    egress_error="nft -f of the rendered ruleset failed in the sandbox namespace: $load_error"
  fi
fi

if [ "${#lab_missing[@]}" -gt 0 ]; then
  reason=$(printf '%s; ' "${lab_missing[@]}")
  check_not_run egress-default-deny "${reason%; }"
  check_not_run dns-exfiltration "${reason%; }"
elif [ -n "$egress_error" ] && [[ $egress_error == without* ]]; then
  check_not_run egress-default-deny "$egress_error"
  check_not_run dns-exfiltration "$egress_error"
elif [ -n "$egress_error" ]; then
  check_fail egress-default-deny "$egress_error"
  check_fail dns-exfiltration "$egress_error"
else
  after=$(probes "${blocked_set[@]}" "${allowed_set[@]}" "${exfil_after[@]}")
  leaked=$(printf '%s\n' "$after" | awk '$1 ~ /^(direct|port|dns-other|dns-other-tcp)$/ && $2 == "reached" {print $1}' | tr '\n' ' ')
  over_blocked=$(printf '%s\n' "$after" | awk '$1 ~ /^(allowed|resolver)$/ && $2 != "reached"' | tr '\n' ';')
  if [ -n "$leaked" ]; then
    check_fail egress-default-deny "with the rendered ruleset loaded these still got through: ${leaked% } ($(printf '%s' "$after" | tr '\n' ';'))"
  elif [ -n "$over_blocked" ]; then
    check_fail egress-default-deny "the non-allowed traffic was dropped, but so was what the policy allows: $over_blocked"
  else
    check_pass egress-default-deny "airlock egress render's ruleset in a sandbox netns dropped a direct connection to a non-allowed address (198.51.100.3:443: $(probe_status "$after" direct)), the allowed address on another port (:8080) and DNS to a non-resolver over udp and tcp, while the allowed 198.51.100.2:443 and the resolver answered; all of them got through before the ruleset"
  fi
  exfil_leaked=$(printf '%s\n' "$after" | awk '$1 ~ /^exfil-/ && $2 == "reached" {print $1}' | tr '\n' ' ')
  logged=$(grep -c -- "$marker" "$scratch/server.log" || true)
  exfil_leaked=${exfil_leaked:-none }
  if [ "$exfil_leaked" != "none " ] || [ "$logged" != 0 ]; then
    check_fail dns-exfiltration "questions carrying the marker reached a DNS server other than the resolver: answered: ${exfil_leaked% }; logged by the server: $logged"
  else
    check_pass dns-exfiltration "4 questions carrying a random marker (udp/53 and tcp/53 to 198.51.100.66, udp/5353, udp/53 to the allowed address) got no answer and the lab DNS server logged none, though it logged the same kind of question before the ruleset; exfiltration through the allowed resolver is its own policy and was not checked"
  fi
fi

# ---- teardown-residue ----
teardown
trap - EXIT
problems=()
if ip netns list 2>/dev/null | grep -q "^airlock-acc-$$-"; then problems+=("namespaces left: $(ip netns list | grep "^airlock-acc-$$-" | tr '\n' ' ')"); fi
for ns in "$netns_sbx" "$netns_out"; do
  if [ -e "/run/netns/$ns" ]; then problems+=("/run/netns/$ns is left"); fi
done
if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then problems+=("lab server process $server_pid still runs"); fi
leftover=$(pgrep -f "$scratch" 2>/dev/null | tr '\n' ' ' || true)
if [ -n "$leftover" ]; then problems+=("processes started by this run still run: $leftover"); fi
if [ -e "$scratch" ]; then problems+=("scratch folder $scratch is left"); fi
host_links_after=$(host_links)
host_tables_after=$(host_tables)
if [ "$host_links_before" != "$host_links_after" ]; then problems+=("lab links appeared in the host's namespace: $(printf '%s' "$host_links_after" | tr '\n' ' ')"); fi
if [ "$host_tables_before" != "$host_tables_after" ]; then problems+=("the host's nftables tables changed: $(printf '%s' "$host_tables_after" | tr '\n' ' ')"); fi

if [ "$made_something" = 0 ]; then
  check_not_run teardown-residue "this run made no sandbox (no microVM booted, no lab namespaces), so there was nothing to tear down"
elif [ "${#problems[@]}" -gt 0 ]; then
  reason=$(printf '%s; ' "${problems[@]}")
  check_fail teardown-residue "${reason%; }"
else
  what='the lab namespaces and their veth pair, the lab server, the scratch folder'
  if [ "$VALIDATE_BOOT_STATUS" != not_run ]; then what="the microVM and its console log, $what"; fi
  check_pass teardown-residue "after teardown nothing is left of $what; no lab link is in the host's namespace and its nftables tables are as before"
fi

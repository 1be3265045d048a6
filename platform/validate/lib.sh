# shellcheck shell=bash
# VALIDATE_BOOT_STATUS and VALIDATE_BOOT_DETAIL are set here for the scripts that source this.
# shellcheck disable=SC2034
# Shared by platform/validate/*.sh: one line per check, honest statuses, a total deadline.
#
# Output contract (what the gate runner's `expect: {pass: N, fail: M}` parses):
#   PASS name: what was checked and seen
#   FAIL name: what was checked and what was wrong
#   NOT_RUN name: why this host could not check it
#   PASS=N FAIL=M NOT_RUN=K        (last line; counted from the lines above, never typed by hand)
# Exit 1 if any check failed, else 0. A not-run check is not a pass: it lowers PASS, so a gate
# expecting every check to pass fails on a host that could not run them all.

# One line, printable ASCII only, bounded: reasons can carry text from other programs.
validate_clean() {
  local text
  text=$(printf '%s' "$*" | tr '\t\r\n' '   ' | tr -cd '\040-\176')
  if [ "${#text}" -gt 400 ]; then text="${text:0:400}…"; fi
  printf '%s' "$text"
}

validate_report() {
  local status=$1 name=$2 reason
  reason=$(validate_clean "$3")
  if [ -z "$reason" ]; then reason="(no reason given)"; fi
  printf '%s %s: %s\n' "$status" "$name" "$reason"
}
check_pass() { validate_report PASS "$1" "$2"; }
check_fail() { validate_report FAIL "$1" "$2"; }
check_not_run() { validate_report NOT_RUN "$1" "$2"; }

# The first line of FILE that matches the extended regex PATTERN, cleaned; empty if none.
validate_first_match() {
  local line
  line=$(grep -a -m1 -E -- "$2" "$1" 2>/dev/null || true)
  validate_clean "$line"
}

# Runs the calling script again as a child under `timeout`, echoes its check lines, counts them
# and prints the summary. A child stopped at the deadline or dying early is a FAIL line of its
# own, so the counts always match the lines and a hang never looks like a pass.
# Usage (at the top of a script, after sourcing this file):
#   validate_supervise TOTAL_SECONDS "$0" "$@"   # returns only in the child
validate_supervise() {
  local total=$1 script=$2
  shift 2
  if [ "${AIRLOCK_VALIDATE_CHILD:-}" = 1 ]; then return 0; fi
  local line pass=0 fail=0 not_run=0 rc=''
  while IFS= read -r line; do
    case $line in
      '__VALIDATE_EXIT '*) rc=${line#__VALIDATE_EXIT }; continue ;;
      'PASS '*) pass=$((pass + 1)) ;;
      'FAIL '*) fail=$((fail + 1)) ;;
      'NOT_RUN '*) not_run=$((not_run + 1)) ;;
      *) ;;
    esac
    printf '%s\n' "$line"
  done < <(
    status=0
    # SIGTERM first so the child's trap tears down what it set up; SIGKILL 10 s later.
    AIRLOCK_VALIDATE_CHILD=1 timeout -k 10 "$total" bash "$script" "$@" || status=$?
    printf '__VALIDATE_EXIT %s\n' "$status"
  )
  case $rc in
    0) ;;
    124 | 137)
      check_fail deadline "stopped after the total timeout of ${total}s; the checks not listed above did not finish"
      fail=$((fail + 1))
      ;;
    *)
      check_fail script-error "the checks stopped early (exit ${rc:-unknown}); see stderr"
      fail=$((fail + 1))
      ;;
  esac
  printf 'PASS=%d FAIL=%d NOT_RUN=%d\n' "$pass" "$fail" "$not_run"
  if [ "$fail" -gt 0 ]; then exit 1; fi
  exit 0
}

# Opens /dev/kvm read-write as this user: the real test, not the mode bits. The character-device
# test comes first: the shell's <> would create a regular file where there is none.
validate_kvm_usable() {
  [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null
}

# Boots a guest kernel under KVM and looks for the kernel's banner on its serial console.
# Sets VALIDATE_BOOT_STATUS (pass|fail|not_run) and VALIDATE_BOOT_DETAIL.
# Arguments: kernel file, rootfs file (may be empty), seconds allowed, scratch folder.
validate_boot_guest() {
  local kernel=$1 rootfs=$2 seconds=$3 scratch=$4
  local missing=() hypervisor='' log="$scratch/guest-console.log" started elapsed rc=0
  VALIDATE_BOOT_STATUS=not_run
  validate_kvm_usable || missing+=("/dev/kvm cannot be opened read-write")
  if [ -z "$kernel" ]; then
    missing+=("no guest kernel (no /boot/vmlinuz-$(uname -r) or /boot/vmlinuz; pass --kernel FILE)")
  elif [ ! -r "$kernel" ]; then
    missing+=("guest kernel $kernel is not readable")
  fi
  local is_elf=0
  if [ -n "$kernel" ] && [ -r "$kernel" ] && [ "$(head -c 4 "$kernel" | tr -cd 'ELF')" = ELF ]; then is_elf=1; fi
  if command -v firecracker >/dev/null 2>&1 && [ "$is_elf" = 1 ]; then
    hypervisor=firecracker
  elif command -v qemu-system-x86_64 >/dev/null 2>&1; then
    hypervisor=qemu
  elif command -v firecracker >/dev/null 2>&1; then
    missing+=("firecracker needs an uncompressed ELF vmlinux; $kernel is not one, and qemu-system-x86_64 is not installed")
  else
    missing+=("no hypervisor: neither firecracker nor qemu-system-x86_64 is on PATH")
  fi
  if [ -n "$rootfs" ] && [ ! -r "$rootfs" ]; then missing+=("root filesystem $rootfs is not readable"); fi
  # Firecracker's config is JSON written here: a path that would need escaping is not guessed at.
  case "$kernel$rootfs" in *'"'* | *\\*) missing+=("a kernel or rootfs path with a quote or backslash is not supported") ;; esac
  if [ "${#missing[@]}" -gt 0 ]; then
    VALIDATE_BOOT_DETAIL=$(printf '%s; ' "${missing[@]}")
    VALIDATE_BOOT_DETAIL=${VALIDATE_BOOT_DETAIL%; }
    return 0
  fi

  started=$(date +%s)
  if [ "$hypervisor" = firecracker ]; then
    local drives='[]' args='console=ttyS0 reboot=k panic=-1 pci=off'
    if [ -n "$rootfs" ]; then
      drives="[{\"drive_id\":\"rootfs\",\"path_on_host\":\"$rootfs\",\"is_root_device\":true,\"is_read_only\":true}]"
      args="$args root=/dev/vda ro"
    fi
    cat >"$scratch/firecracker.json" <<EOF
{"boot-source":{"kernel_image_path":"$kernel","boot_args":"$args"},"drives":$drives,"machine-config":{"vcpu_count":1,"mem_size_mib":256}}
EOF
    timeout -k 5 "$seconds" firecracker --no-api --config-file "$scratch/firecracker.json" >"$log" 2>&1 </dev/null || rc=$?
  else
    local extra=()
    if [ -n "$rootfs" ]; then extra=(-drive "file=$rootfs,format=raw,if=virtio,readonly=on" -append 'console=ttyS0 panic=-1 root=/dev/vda ro'); else extra=(-append 'console=ttyS0 panic=-1'); fi
    timeout -k 5 "$seconds" qemu-system-x86_64 -enable-kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config \
      -display none -serial stdio -no-reboot -kernel "$kernel" "${extra[@]}" >"$log" 2>&1 </dev/null || rc=$?
  fi
  elapsed=$(($(date +%s) - started))
  local banner mounted
  banner=$(validate_first_match "$log" 'Linux version [0-9]')
  if [ -z "$banner" ]; then
    VALIDATE_BOOT_STATUS=fail
    VALIDATE_BOOT_DETAIL="$hypervisor with $kernel: no kernel banner on the serial console within ${seconds}s (exit $rc); last output: $(tail -c 200 "$log" 2>/dev/null || true)"
    return 0
  fi
  if [ -n "$rootfs" ]; then
    mounted=$(validate_first_match "$log" 'VFS: Mounted root')
    if [ -z "$mounted" ]; then
      VALIDATE_BOOT_STATUS=fail
      VALIDATE_BOOT_DETAIL="$hypervisor with $kernel booted ('${banner:0:80}') but did not mount the root filesystem $rootfs within ${seconds}s"
      return 0
    fi
  fi
  VALIDATE_BOOT_STATUS=pass
  VALIDATE_BOOT_DETAIL="$hypervisor booted $kernel${rootfs:+ with root $rootfs} under KVM in ${elapsed}s; console: '${banner:0:120}'"
}

# The guest kernel to boot: the given one, else the host's own.
validate_default_kernel() {
  local candidate
  for candidate in "/boot/vmlinuz-$(uname -r)" /boot/vmlinuz /vmlinuz; do
    if [ -r "$candidate" ]; then
      printf '%s' "$candidate"
      return 0
    fi
  done
  return 0
}

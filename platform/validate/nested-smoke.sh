#!/usr/bin/env bash
# Nested-virtualization smoke test for a lab host: can this host run microVMs?
#
#   kvm-device   /dev/kvm exists and this user can open it read-write
#   kvm-nested   the kvm_intel / kvm_amd module's `nested` parameter is on
#   guest-boot   a minimal guest boots under KVM (Firecracker with an ELF vmlinux, else QEMU
#                with -kernel), seen by the kernel's banner on its serial console; not run when
#                /dev/kvm, a hypervisor or a kernel is missing
#
# Options (or environment):
#   --kernel FILE        guest kernel (NESTED_SMOKE_KERNEL; default /boot/vmlinuz-$(uname -r))
#   --boot-timeout SECS  how long the guest may take (NESTED_SMOKE_BOOT_TIMEOUT; default 60)
#   --timeout SECS       total deadline for the script (NESTED_SMOKE_TIMEOUT; default 120)
#
# Output: one line per check, then `PASS=N FAIL=M NOT_RUN=K`; exit 1 if any check failed.
# No network is used.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

kernel=${NESTED_SMOKE_KERNEL:-}
boot_timeout=${NESTED_SMOKE_BOOT_TIMEOUT:-60}
total_timeout=${NESTED_SMOKE_TIMEOUT:-120}
args=("$@")
while [ "$#" -gt 0 ]; do
  case $1 in
    --kernel) kernel=${2:?--kernel needs a file}; shift 2 ;;
    --boot-timeout) boot_timeout=${2:?--boot-timeout needs seconds}; shift 2 ;;
    --timeout) total_timeout=${2:?--timeout needs seconds}; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "nested-smoke: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$boot_timeout" "$total_timeout"; do
  case $n in '' | *[!0-9]*) echo "nested-smoke: timeouts are whole seconds, not '$n'" >&2; exit 2 ;; esac
done

validate_supervise "$total_timeout" "$0" "${args[@]}"

# ---- the child, under the deadline ----
scratch=$(mktemp -d "${TMPDIR:-/tmp}/airlock-nested-smoke.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 143' TERM

# kvm-device
user="uid $(id -u) ($(id -un 2>/dev/null || echo unknown))"
if [ ! -e /dev/kvm ]; then
  check_fail kvm-device "/dev/kvm does not exist: KVM is not available to this host (no virtualization extensions exposed, or the kvm module is not loaded)"
elif [ ! -c /dev/kvm ]; then
  check_fail kvm-device "/dev/kvm exists but is not a character device"
elif validate_kvm_usable; then
  check_pass kvm-device "opened /dev/kvm read-write as $user"
else
  check_fail kvm-device "/dev/kvm exists but $user cannot open it read-write ($(stat -c '%A %U:%G' /dev/kvm 2>/dev/null || echo 'mode unknown')); add the user to its group"
fi

# kvm-nested
nested_file=''
for module in kvm_intel kvm_amd; do
  if [ -r "/sys/module/$module/parameters/nested" ]; then
    nested_file="/sys/module/$module/parameters/nested"
    break
  fi
done
if [ -n "$nested_file" ]; then
  value=$(tr -d '[:space:]' <"$nested_file")
  case $value in
    Y | y | 1) check_pass kvm-nested "$nested_file is $value: guests may run their own VMs" ;;
    *) check_fail kvm-nested "$nested_file is '$value': nested virtualization is off (modprobe ${module} nested=1)" ;;
  esac
else
  loaded=$(find /sys/module -maxdepth 1 -name 'kvm*' -printf '%f ' 2>/dev/null || true)
  loaded=${loaded% }
  check_not_run kvm-nested "neither kvm_intel nor kvm_amd is loaded, so there is no nested parameter to read (kvm modules loaded: ${loaded:-none})"
fi

# guest-boot
if [ -z "$kernel" ]; then kernel=$(validate_default_kernel); fi
validate_boot_guest "$kernel" '' "$boot_timeout" "$scratch"
case $VALIDATE_BOOT_STATUS in
  pass) check_pass guest-boot "$VALIDATE_BOOT_DETAIL" ;;
  fail) check_fail guest-boot "$VALIDATE_BOOT_DETAIL" ;;
  *) check_not_run guest-boot "$VALIDATE_BOOT_DETAIL" ;;
esac

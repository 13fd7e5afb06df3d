#!/bin/bash
# The benchmark, inside the full guest (see scripts/bench): writes the OCI
# bundles of nginx and redis (no seccomp, Docker's default profile,
# speaker's profile under speaker.ko, the same under the notify engine), runs `speaker-ctl bench`, and prints the results and
# the guest's kernel log for the host between "SPEAKER-FILE-BEGIN <name>"
# and "SPEAKER-FILE-END" lines.
#
#   bench-guest.sh SHARE [speaker-ctl bench options...]
#   SHARE holds services.sh, docker-default-seccomp.json and profiles/.
set -euo pipefail
share=${1:-/mnt/share}
shift || true
. "$share/services.sh"
out=/srv/bench
rm -rf "$out"; mkdir -p "$out"
emit() { echo "SPEAKER-FILE-BEGIN $1"; cat "$2"; echo; echo "SPEAKER-FILE-END"; }
for svc in $services; do
  cmd_var=${svc}_cmd
  cmd=${!cmd_var}
  for variant in none docker speaker notify; do
    bundle=/srv/containers/$svc-$variant
    mkdir -p "$bundle/rootfs"
    mountpoint -q "$bundle/rootfs" || mount --bind / "$bundle/rootfs"
    case $variant in
      none) extra=() ;;
      docker) extra=(--seccomp "$share/docker-default-seccomp.json") ;;
      speaker) extra=(--profile "$share/profiles/$svc.json" --annotation io.speaker.engine=kmod) ;;
      notify) extra=(--profile "$share/profiles/$svc.json" --annotation io.speaker.engine=notify) ;;
    esac
    # shellcheck disable=SC2086
    oci-bundle "$bundle" --hostname "$svc" "${extra[@]}" -- $cmd
  done
done
rm -f /srv/redis/dump.rdb
status=0
speaker-ctl bench --out "$out" --bundles /srv/containers --docker-profile "$share/docker-default-seccomp.json" \
  --nginx-profile "$share/profiles/nginx.json" "$@" || status=$?
dmesg > "$out/kernel.log"
if grep -qE "BUG:|WARNING:|possible circular|inconsistent lock state|unreferenced object|Call Trace" "$out/kernel.log"; then
  echo "bench: the guest kernel log has a report (see kernel.log):"
  grep -E -A3 "BUG:|WARNING:|possible circular|inconsistent lock state|unreferenced object|Call Trace" "$out/kernel.log" | head -n 40
fi
for f in results.json results.md switch-latency.svg throughput.svg kernel.log; do
  [ -f "$out/$f" ] && emit "$f" "$out/$f"
done
exit $status

#!/bin/sh
# The benchmark in the busybox initramfs (scripts/bench --arch arm64): no
# services there, so `speaker-ctl bench` runs the suites that need none
# (filter cost, switch latency against tasks); results, plots and the
# kernel log are printed for the host between "SPEAKER-FILE-BEGIN <name>"
# and "SPEAKER-FILE-END" lines, as bench-guest.sh does.
#
#   bench-guest-small.sh SHARE [speaker-ctl bench options...]
#   SHARE holds docker-default-seccomp.json and profiles/nginx.json.
share=${1:-/mnt/share}
shift
out=/tmp/bench
rm -rf "$out"; mkdir -p "$out"
emit() { echo "SPEAKER-FILE-BEGIN $1"; cat "$2"; echo; echo "SPEAKER-FILE-END"; }
status=0
speaker-ctl bench --out "$out" --docker-profile "$share/docker-default-seccomp.json" \
  --nginx-profile "$share/profiles/nginx.json" "$@" || status=$?
dmesg > "$out/kernel.log"
if grep -qE "BUG:|WARNING:|possible circular|inconsistent lock state|unreferenced object|Call Trace" "$out/kernel.log"; then
  echo "bench: the guest kernel log has a report (see kernel.log):"
  grep -E -A3 "BUG:|WARNING:|possible circular|inconsistent lock state|unreferenced object|Call Trace" "$out/kernel.log" | head -n 40
fi
for f in results.json results.md switch-latency.svg kernel.log; do
  [ -f "$out/$f" ] && emit "$f" "$out/$f"
done
exit $status

#!/bin/bash
# The demo, inside the full guest (see scripts/demo): for nginx and redis,
# trace the three phases under load, run the service as an OCI container
# through speaker-runtime (crun underneath), wait for the automatic switch
# to the running phase, run the workload again, show that a boot-only
# syscall is denied inside the container, stop it (shutdown phase), and
# print the table against Docker's default profile.
#
#   oci-demo.sh SHARE   SHARE holds services.sh and docker-default-seccomp.json
#
# Files for the host are printed between "SPEAKER-FILE-BEGIN <name>" and
# "SPEAKER-FILE-END" lines.
set -euo pipefail
share=${1:-/mnt/share}
. "$share/services.sh"
out=/srv/demo
rm -rf "$out"; mkdir -p "$out/profiles"
t0=$(date +%s)
step() { echo; echo "demo [$(( $(date +%s) - t0 ))s] $*"; }
fail() { echo "demo: FAILED: $*"; exit 1; }
emit() { echo "SPEAKER-FILE-BEGIN $1"; cat "$2"; echo; echo "SPEAKER-FILE-END"; }

phase_of() { speaker-ctl status "$1" --json 2>/dev/null | sed -n 's/.*"phase": "\([a-z]*\)".*/\1/p' | head -n1; }

# Checks the workload's output for failures.
check_workload() {
  local svc=$1 log=$2
  case $svc in
    nginx)
      grep -q "Complete requests: *1000" "$log" || fail "nginx: not every request completed"
      grep -q "Failed requests: *0" "$log" || fail "nginx: failed requests"
      ! grep -q "Non-2xx" "$log" || fail "nginx: non-2xx responses"
      echo "nginx: $(grep 'Complete requests' "$log" | tr -s ' '), $(grep 'Failed requests' "$log" | tr -s ' '), $(grep 'Requests per second' "$log" | tr -s ' ')" ;;
    redis)
      grep -q "total_error_replies:0" "$log" || fail "redis: error replies ($(grep total_error_replies "$log"))"
      echo "redis: $(grep -c 'requests per second' "$log") benchmarks, $(grep total_error_replies "$log" | tr -d '\r'), $(grep total_commands_processed "$log" | tr -d '\r')" ;;
  esac
}

for svc in $services; do
  cmd_var=${svc}_cmd ready_var=${svc}_ready work_var=${svc}_workload
  cmd=${!cmd_var} ready=${!ready_var} workload=${!work_var}
  profile=$out/profiles/$svc.json

  step "$svc: tracing '$cmd' (ready: $ready; workload: $workload)"
  # shellcheck disable=SC2086
  speaker-ctl trace --mode filter --name "$svc" --ready "$ready" --workload "$workload > /dev/null" \
    --running-for 3s -o "$profile" -- $cmd > "$out/$svc-trace.log" 2>&1 || { cat "$out/$svc-trace.log"; fail "$svc: trace"; }
  grep -E "^(trace|speaker-ctl)" "$out/$svc-trace.log" | tail -n 6 || true
  speaker-ctl profile show "$profile" | cut -c1-150

  step "$svc: OCI container '$svc-demo' through speaker-runtime (crun), profile $profile"
  bundle=/srv/containers/$svc
  mkdir -p "$bundle/rootfs"
  mountpoint -q "$bundle/rootfs" || mount --bind / "$bundle/rootfs"
  # shellcheck disable=SC2086
  oci-bundle "$bundle" --hostname "$svc" --profile "$profile" -- $cmd
  [ "$svc" != redis ] || rm -f /srv/redis/dump.rdb /srv/redis/redis.log
  speaker-runtime run -d --bundle "$bundle" "$svc-demo" > "$out/$svc-container.log" 2>&1 < /dev/null \
    || { cat "$out/$svc-container.log"; fail "$svc: speaker-runtime run"; }
  speaker-ctl status "$svc-demo"
  for _ in $(seq 600); do [ "$(phase_of "$svc-demo")" = running ] && break; sleep 0.1; done
  [ "$(phase_of "$svc-demo")" = running ] || { cat "/run/speaker/$svc-demo/monitor.log"; fail "$svc: no automatic switch"; }
  echo "monitor: $(grep -o 'ready.*' "/run/speaker/$svc-demo/monitor.log")"
  speaker-ctl status "$svc-demo"

  step "$svc: workload after the switch"
  sh -c "$workload" > "$out/$svc-workload.log" 2>&1 || { cat "$out/$svc-workload.log"; fail "$svc: workload"; }
  check_workload "$svc" "$out/$svc-workload.log"

  step "$svc: a boot-only syscall inside the running container"
  boot=$(speaker-ctl profile show --phase boot "$profile")
  running=$(speaker-ctl profile show --phase running "$profile")
  x=
  # ... and not among what processes exec'ed now get on top of the running
  # set (what crun and any program need to start).
  exec_filter=/run/speaker/$svc-demo/running.exec.json
  for name in $(speaker-probe known); do
    if grep -qx "$name" <<<"$boot" && ! grep -qx "$name" <<<"$running" && ! grep -q "\"$name\"" "$exec_filter"; then x=$name; break; fi
  done
  [ -n "$x" ] || fail "$svc: no boot-only syscall that speaker-probe can make"
  echo "'$x' is in $svc's boot phase, not in its running phase:"
  res=$(speaker-runtime exec "$svc-demo" speaker-probe try "$x")
  echo "  speaker-runtime exec $svc-demo speaker-probe try $x  ->  $res"
  [ "$res" = "$x: errno 1" ] || fail "$svc: $x was not denied with EPERM inside the running container"

  step "$svc: stop (kill SIGTERM: shutdown phase first)"
  speaker-runtime kill "$svc-demo" TERM
  echo "phase at SIGTERM: $(sed -n 's/.*"current": "\([a-z]*\)".*/\1/p' "/run/speaker/$svc-demo/state.json")"
  for _ in $(seq 300); do speaker-runtime state "$svc-demo" | grep -q '"stopped"' && break; sleep 0.1; done
  speaker-runtime state "$svc-demo" | grep -q '"stopped"' || fail "$svc: did not stop within 30 s"
  if [ "$svc" = redis ]; then
    grep -q "DB saved on disk" /srv/redis/redis.log || { grep -v '^ *$' /srv/redis/redis.log | head -n 60; fail "redis: no dump saved on shutdown"; }
    ! grep -qiE "error|failed|not permitted" /srv/redis/redis.log || { grep -v '^ *$' /srv/redis/redis.log | head -n 60; fail "redis: errors in its log"; }
    [ -s /srv/redis/dump.rdb ] || fail "redis: /srv/redis/dump.rdb missing"
    echo "redis: $(grep -o 'DB saved on disk' /srv/redis/redis.log), dump.rdb $(stat -c %s /srv/redis/dump.rdb) bytes"
  fi
  speaker-runtime delete "$svc-demo"
  emit "profiles/$svc.json" "$profile"
done

step "syscalls allowed per phase vs Docker's default profile (x86_64)"
speaker-ctl profile table --baseline "$share/docker-default-seccomp.json" \
  --json "$out/table.json" --markdown "$out/table.md" "$out"/profiles/*.json
emit table.json "$out/table.json"
emit table.md "$out/table.md"
step "done"

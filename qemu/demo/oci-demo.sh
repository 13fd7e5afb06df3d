#!/bin/bash
# The demo, inside the full guest (see scripts/demo): for nginx, redis,
# PostgreSQL and MariaDB,
# trace the phases under each of the service's workloads (services.sh) and
# merge the traces, run the service as an OCI container
# through speaker-runtime (crun underneath), wait for the automatic switch
# to the running phase, run every workload again (0 errors, no permission
# error in the service's log), reload nginx (SIGHUP through the reload
# phase), show that a boot-only
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
    postgres)
      grep -q "number of transactions actually processed: 200/200" "$log" || fail "postgres: not every pgbench transaction was processed"
      grep -q "number of failed transactions: 0 " "$log" || fail "postgres: failed pgbench transactions"
      echo "postgres: $(grep 'actually processed' "$log"), $(grep 'failed transactions' "$log"), $(grep '^tps' "$log")" ;;
    mariadb)
      ! grep -qi error "$log" || fail "mariadb: errors in mysqlslap's output"
      echo "mariadb: mysqlslap $(grep -E 'Number of clients|Average number of seconds' "$log" | tr -s ' ' | tr '\n' ';')" ;;
  esac
}

# Permission errors in a service's log (EPERM and EACCES as nginx and redis
# print them).
perm_errors() { grep -iE "operation not permitted|permission denied|\((1|13): " "$1" 2>/dev/null || true; }

# fatal_lines SVC: lines of SVC's log that say it crashed or failed
# (services.sh <svc>_fatal).
fatal_lines() { local fv=${1}_fatal lv=${1}_log; grep -E "${!fv}" "${!lv}" 2>/dev/null || true; }
# denial_count CONTAINER: the denials speaker-ctl reports for it.
denial_count() { speaker-ctl denials "$1" 2>/dev/null | tail -n +2 | grep -c . || true; }

# held_out SVC MODE CONTAINER: runs SVC's held-out workloads (never traced)
# against CONTAINER, compiled in MODE.  A workload passes if it exits 0,
# the service still runs in its running phase, and it caused no denial and
# no fatal line in the service's log (whatever the client saw).  Appends
# "SVC MODE PASSED TOTAL FAILED-NAMES" to $out/heldout.txt.
held_out() {
  local svc=$1 mode=$2 ct=$3 pass=0 total failed= hv=${1}_heldout d0 f0 why
  total=$(wc -w <<<"${!hv}")
  for w in ${!hv}; do
    local wv=${svc}_heldout_$w
    d0=$(denial_count "$ct") f0=$(fatal_lines "$svc" | grep -c . || true)
    why=
    sh -c "${!wv}" > "$out/$svc-heldout-$mode-$w.log" 2>&1 || why="exit $?: $(tail -c 200 "$out/$svc-heldout-$mode-$w.log" | tr '\n' ' ')"
    [ "$(phase_of "$ct")" = running ] || why="${why:+$why; }the service is gone"
    sleep 1 # (the kernel's audit records of the workload's denials)
    [ "$(denial_count "$ct")" = "$d0" ] || why="${why:+$why; }$(( $(denial_count "$ct") - d0 )) denials"
    [ "$(fatal_lines "$svc" | grep -c . || true)" = "$f0" ] || why="${why:+$why; }fatal lines in its log"
    if [ -z "$why" ]; then
      pass=$((pass + 1)); echo "$svc ($mode): held-out '$w': ok"
    else
      failed="$failed${failed:+,}$w"; echo "$svc ($mode): held-out '$w': FAILED ($why)"
      [ "$(phase_of "$ct")" = running ] || break
    fi
  done
  echo "$svc $mode $pass $total ${failed:--}" >> "$out/heldout.txt"
}

for svc in $services; do
  cmd_var=${svc}_cmd ready_var=${svc}_ready work_var=${svc}_workload works_var=${svc}_workloads sig_var=${svc}_reload_signal log_var=${svc}_log
  cmd=${!cmd_var} ready=${!ready_var} workload=${!work_var} workloads=${!works_var} reload_signal=${!sig_var:-} svclog=${!log_var}
  profile=$out/profiles/$svc.json
  mkdir -p "$out/runs" "$out/bench"

  # Held-out workloads (<svc>_heldout) are never traced: only
  # <svc>_workloads is; a name in both lists is refused.
  heldout_var=${svc}_heldout
  for w in $workloads; do
    case " ${!heldout_var:-} " in *" $w "*) fail "$svc: workload '$w' is also held out (examples/services.sh)" ;; esac
  done
  runs=()
  for w in $workloads; do
    wvar=${svc}_workload_$w
    reload=()
    # The reload signal with the first workload (one reload is traced).
    [ -z "$reload_signal" ] || [ ${#runs[@]} != 0 ] || reload=(--reload-signal "$reload_signal")
    step "$svc: tracing '$cmd' under workload '$w' (ready: $ready${reload:+; then ${reload[*]}})"
    [ "$svc" != redis ] || rm -rf /srv/redis/dump.rdb /srv/redis/appendonlydir /srv/redis/redis.log
    # shellcheck disable=SC2086
    # --auto-windows 8: "auto" (boot, reload) needs 4 s without a new
    # syscall (on a loaded machine a service can stall for 2 s mid-boot).
    speaker-ctl trace --mode filter --name "$svc" --ready "$ready" --auto-windows 8 --workload "${!wvar}" "${reload[@]}" \
      --running-for 3s -o "$out/runs/$svc-$w.json" -- $cmd > "$out/$svc-$w-trace.log" 2>&1 || { cat "$out/$svc-$w-trace.log"; fail "$svc: trace ($w)"; }
    grep -q "workload exited with status 0" "$out/$svc-$w-trace.log" || { cat "$out/$svc-$w-trace.log"; fail "$svc: workload '$w' failed while traced"; }
    grep -E "^speaker-ctl: (boot|running|reload|shutdown):" "$out/$svc-$w-trace.log" || true
    runs+=("$out/runs/$svc-$w.json")
  done
  cp "${runs[0]}" "$out/bench/$svc.json"
  step "$svc: merging the ${#runs[@]} traces (what each added to which phase)"
  speaker-ctl profile merge -o "$profile" "${runs[@]}"
  speaker-ctl profile show "$profile" | cut -c1-150

  step "$svc: OCI container '$svc-demo' through speaker-runtime (crun), profile $profile"
  bundle=/srv/containers/$svc
  mkdir -p "$bundle/rootfs"
  mountpoint -q "$bundle/rootfs" || mount --bind / "$bundle/rootfs"
  # The operator's allow list for the service (services.sh <svc>_allow: what
  # an operator decided the running phase may do, e.g. nginx's chown when it
  # reopens its logs), as the io.speaker.allow annotation.
  allow_var=${svc}_allow allow=()
  [ -z "${!allow_var:-}" ] || allow=(--annotation "io.speaker.allow=$(tr ' ' ',' <<<"${!allow_var}")")
  # shellcheck disable=SC2086
  oci-bundle "$bundle" --hostname "$svc" --profile "$profile" "${allow[@]}" -- $cmd
  [ "$svc" != redis ] || rm -rf /srv/redis/dump.rdb /srv/redis/redis.log /srv/redis/appendonlydir
  # (emptied, not removed: the service's user owns it)
  [ ! -f "$svclog" ] || : > "$svclog"
  speaker-runtime run -d --bundle "$bundle" "$svc-demo" > "$out/$svc-container.log" 2>&1 < /dev/null \
    || { cat "$out/$svc-container.log"; fail "$svc: speaker-runtime run"; }
  speaker-ctl status "$svc-demo"
  for _ in $(seq 600); do [ "$(phase_of "$svc-demo")" = running ] && break; sleep 0.1; done
  [ "$(phase_of "$svc-demo")" = running ] || { cat "/run/speaker/$svc-demo/monitor.log"; fail "$svc: no automatic switch"; }
  echo "monitor: $(grep -o "ready ('.*" "/run/speaker/$svc-demo/monitor.log")"
  speaker-ctl status "$svc-demo"

  step "$svc: every workload after the switch"
  sh -c "$workload" > "$out/$svc-workload.log" 2>&1 || { cat "$out/$svc-workload.log"; fail "$svc: workload"; }
  check_workload "$svc" "$out/$svc-workload.log"
  for w in $workloads; do
    wvar=${svc}_workload_$w
    sh -c "${!wvar}" > "$out/$svc-$w-workload.log" 2>&1 || { cat "$out/$svc-$w-workload.log"; perm_errors "$svclog"; fail "$svc: workload '$w' failed after the switch"; }
    [ "$(phase_of "$svc-demo")" = running ] || fail "$svc: left its running phase during workload '$w'"
    echo "$svc: workload '$w': ok"
  done
  [ -z "$(perm_errors "$svclog")" ] || { perm_errors "$svclog"; fail "$svc: permission errors in $svclog"; }
  echo "$svc: no permission error in $svclog"
  if [ -n "$reload_signal" ]; then
    step "$svc: reload (speaker-runtime kill $svc-demo $reload_signal: running -> reload -> running)"
    speaker-runtime kill "$svc-demo" "$reload_signal" || fail "$svc: speaker-runtime kill $reload_signal"
    [ "$(phase_of "$svc-demo")" = running ] || { cat "/run/speaker/$svc-demo/monitor.log"; fail "$svc: not back in running after the reload"; }
    grep -E "reload" "/run/speaker/$svc-demo/monitor.log" | sed 's/^[0-9]* //'
    wvar=${svc}_workload_bench
    sh -c "${!wvar}" > "$out/$svc-reload-workload.log" 2>&1 || fail "$svc: workload after the reload"
    [ -z "$(perm_errors "$svclog")" ] || { perm_errors "$svclog"; fail "$svc: permission errors in $svclog after the reload"; }
    echo "$svc: serves after the reload, no permission error"
  fi

  step "$svc: held-out workloads (never traced), balanced (the default compile mode)"
  held_out "$svc" balanced "$svc-demo"
  read -r _ _ hp ht hf <<<"$(tail -n 1 "$out/heldout.txt")"
  [ "$hp" = "$ht" ] || fail "$svc: held-out workloads failed under balanced: $hf"
  n=$(speaker-ctl denials "$svc-demo" | tail -n +2 | grep -c . || true)
  [ "$n" = 0 ] || { speaker-ctl denials "$svc-demo"; fail "$svc: $n denials under balanced"; }
  [ -z "$(fatal_lines "$svc")" ] || { fatal_lines "$svc"; fail "$svc: fatal lines in its log under balanced"; }
  echo "$svc: $hp/$ht held-out workloads passed under balanced, 0 denials, no fatal line in its log"

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
  case $svc in
    postgres)
      grep -q "database system is shut down" "$svclog" || { tail -n 40 "$svclog"; fail "postgres: no clean shutdown in $svclog"; }
      echo "postgres: $(grep -o 'database system is shut down' "$svclog" | tail -n 1)" ;;
    mariadb)
      grep -q "Shutdown complete" "$svclog" || { tail -n 40 "$svclog"; fail "mariadb: no clean shutdown in $svclog"; }
      echo "mariadb: $(grep -o 'mariadbd: Shutdown complete' "$svclog" | tail -n 1)" ;;
  esac
  speaker-runtime delete "$svc-demo"
  emit "profiles/$svc.json" "$profile"

  step "$svc: the held-out workloads again, compiled strict (traced + margin: reported, not required)"
  [ "$svc" != redis ] || rm -rf /srv/redis/dump.rdb /srv/redis/redis.log /srv/redis/appendonlydir
  [ ! -f "$svclog" ] || : > "$svclog"
  # shellcheck disable=SC2086
  oci-bundle "$bundle" --hostname "$svc" --profile "$profile" "${allow[@]}" --annotation io.speaker.compile=strict -- $cmd
  speaker-runtime run -d --bundle "$bundle" "$svc-strict" > "$out/$svc-strict-container.log" 2>&1 < /dev/null \
    || { cat "$out/$svc-strict-container.log"; fail "$svc: speaker-runtime run (strict)"; }
  for _ in $(seq 600); do [ "$(phase_of "$svc-strict")" = running ] && break; sleep 0.1; done
  if [ "$(phase_of "$svc-strict")" = running ]; then
    held_out "$svc" strict "$svc-strict"
  else
    # A strict boot phase may lack what this boot needed (a trace shows
    # what one boot did): reported as such.
    hv=${svc}_heldout
    echo "$svc (strict): did not reach its running phase; monitor log:"; tail -n 5 "/run/speaker/$svc-strict/monitor.log"
    echo "$svc strict 0 $(wc -w <<<"${!hv}") (no-running-phase)" >> "$out/heldout.txt"
  fi
  echo "$svc (strict): $(speaker-ctl denials "$svc-strict" | tail -n +2 | grep -c . || true) denials; fatal lines in its log: $(fatal_lines "$svc" | grep -c . || true)"
  speaker-runtime kill "$svc-strict" KILL 2>/dev/null || true
  for _ in $(seq 100); do speaker-runtime state "$svc-strict" 2>/dev/null | grep -q '"stopped"' && break; sleep 0.1; done
  speaker-runtime delete -f "$svc-strict" 2>/dev/null || true
done

{
  echo "| service | held-out workloads | passed, balanced (default) | passed, strict | failed under strict |"
  echo "|---|---:|---:|---:|---|"
  for svc in $services; do
    read -r _ _ bp bt _ <<<"$(grep "^$svc balanced " "$out/heldout.txt")"
    read -r _ _ sp st sf <<<"$(grep "^$svc strict " "$out/heldout.txt")"
    echo "| $svc | $bt | $bp/$bt | $sp/$st | ${sf//,/, } |"
  done
  echo
  echo "Held-out workloads: services.sh's <svc>_heldout, never traced; run after the automatic switch, in enforce mode. A workload fails if it fails, stops the service, or causes a denial or a fatal line in the service's log (services.sh <svc>_fatal), whatever the client saw; a failure that stopped the service ends its run (the rest are not attempted)."
} > "$out/heldout.md"
emit heldout.md "$out/heldout.md"

step "the benchmark alone (one trace per service): syscalls allowed per phase vs Docker's default profile (x86_64)"
speaker-ctl profile table --baseline "$share/docker-default-seccomp.json" \
  --json "$out/table-bench.json" --markdown "$out/table-bench.md" "$out"/bench/*.json
step "every workload, merged: syscalls allowed per phase vs Docker's default profile (x86_64)"
speaker-ctl profile table --baseline "$share/docker-default-seccomp.json" \
  --json "$out/table.json" --markdown "$out/table.md" "$out"/profiles/*.json
emit table-bench.md "$out/table-bench.md"
emit table.json "$out/table.json"
emit table.md "$out/table.md"
step "done"

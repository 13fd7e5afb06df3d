#!/bin/sh
# Runs inside the VM (scripts/demo): speaker end to end on a small real
# service (busybox httpd): trace its phases, run it as a container under the
# traced profile, switch it to its running phase under load, then prove
# denials inside a container from every thread.
set -e
say() { printf '\n=== %s\n' "$*"; }
D=/tmp/demo
mkdir -p $D/www && echo "hello from speaker" > $D/www/index.html
load() { # load N: N requests, prints how many failed
  fails=0
  for i in $(seq "$1"); do wget -q -O /dev/null http://127.0.0.1:8080/index.html || fails=$((fails + 1)); done
  echo "$1 requests, $fails failed"
}

say "1. speaker-ctl talks to speaker.ko"
speaker-ctl version

say "2. trace busybox httpd: boot until port 8080 listens, running under a workload, then shutdown"
speaker-ctl trace --ready port:8080 --workload "for i in \$(seq 20); do wget -q -O /dev/null http://127.0.0.1:8080/index.html; done" \
    --running-for 1s --name httpd -o $D/httpd.json -- busybox httpd -f -p 127.0.0.1:8080 -h $D/www ||
  echo "(httpd ended with status $? after SIGTERM, as it has no handler)"
speaker-ctl profile show $D/httpd.json | cut -c1-150

say "3. run httpd as a container under its boot filter, switch to running under load"
speaker-ctl run --name httpd --profile $D/httpd.json --detach -- busybox httpd -f -p 127.0.0.1:8080 -h $D/www
until wget -q -O /dev/null http://127.0.0.1:8080/index.html; do sleep 0.2; done
load 20
speaker-ctl switch httpd
load 50
speaker-ctl status
speaker-ctl stop httpd --timeout 2

say "4. a container of 17 tasks: a boot-only syscall is denied in every task after the switch"
cat > $D/boot.json <<'J'
{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
 "syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_ERRNO","errnoRet":1000}]}
J
cat > $D/running.json <<'J'
{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
 "syscalls":[{"names":["sysinfo","mount","sethostname","getpriority"],"action":"SCMP_ACT_ERRNO","errnoRet":1000}]}
J
C=$D/probe
mkdir -p $C
speaker-ctl run --name probe --volume $C --boot $D/boot.json --running $D/running.json --detach -- speaker-probe serve $C --threads 16
while [ "$(ls $C 2>/dev/null | grep -c '^ready')" -lt 17 ]; do sleep 0.1; done
ask() { # ask GEN OP: every task of the container makes the syscall
  echo "$1 $2" > $C/cmd.new && mv $C/cmd.new $C/cmd
  while [ "$(ls $C/res 2>/dev/null | grep -c "^$1\.p[0-9]*t[0-9]*\$")" -lt 17 ]; do sleep 0.1; done
  printf '%-18s -> ' "$2"; cat $C/res/$1.p*t*[0-9] | sort | uniq -c | awk '{c=$1; $1=""; printf "%s task(s):%s  ", c, $0}'; echo
}
echo "boot phase (0 = success):"
ask 1 "sys mount"
ask 2 "sys getpriority"
speaker-ctl switch probe
echo "running phase (errno 1000 = denied by the running filter):"
ask 3 "sys mount"
ask 4 "sys getpriority"
ask 5 "sys getppid"
echo "99 exit" > $C/cmd
sleep 0.5

say "5. attack surface: syscalls allowed per phase vs Docker's default profile"
speaker-ctl profile table --baseline /mnt/share/docker-default-seccomp.json \
    --json $D/table.json --markdown $D/table.md $D/httpd.json
cat $D/table.md
say "done"

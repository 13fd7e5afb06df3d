#!/bin/sh
# Runs inside the VM (scripts/demo): one container through its phases.
set -e
say() { printf '\n=== %s\n' "$*"; }
say "speaker-ctl talks to speaker.ko"
speaker-ctl version

mkdir -p /tmp/demo
cat > /tmp/demo/boot.json <<'J'
{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
 "syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_ERRNO","errnoRet":1000}]}
J
cat > /tmp/demo/running.json <<'J'
{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
 "syscalls":[{"names":["sysinfo","mount","sethostname","getpriority"],"action":"SCMP_ACT_ERRNO","errnoRet":1000}]}
J
D=/tmp/demo/c
say "start a container (16 threads) under its boot filter"
speaker-ctl run --name demo --boot /tmp/demo/boot.json --running /tmp/demo/running.json --detach -- \
    speaker-probe serve $D --threads 16
while [ "$(ls $D | grep -c '^ready')" -lt 17 ]; do sleep 0.1; done
speaker-ctl status
ask() { # ask GEN OP: every task of the container makes the syscall
  echo "$1 $2" > $D/cmd.new && mv $D/cmd.new $D/cmd
  while [ "$(ls $D/res | grep -c "^$1\.p")" -lt 17 ]; do sleep 0.1; done
  printf '%-22s -> ' "$2"; cat $D/res/$1.p* | sort | uniq -c | tr '\n' ' '; echo
}
say "boot phase: mount is allowed in all 17 tasks"
ask 1 "sys mount"
ask 2 "sys getpriority"
say "switch to the running phase"
speaker-ctl switch demo
say "running phase: mount and getpriority are denied (errno 1000) in every task"
ask 3 "sys mount"
ask 4 "sys getpriority"
ask 5 "sys getppid"
speaker-ctl status
echo "99 exit" > $D/cmd
sleep 1
say "done"

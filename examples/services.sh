# The demo's services, as the Debian guest runs them (qemu/run --rootfs full):
# command, readiness condition, reload signal and workloads.  Sourced by the
# demo (qemu/demo/oci-demo.sh, which also regenerates examples/profiles/) and
# by the VM scenarios of speaker-runtime (tests/src/bin/vm-oci.rs).
#
# Workloads: <svc>_workloads names several, each a shell command
# <svc>_workload_<name> run from outside the container that exits 0 only if
# the service did what it was asked.  They cover what the service does in
# production, not only its benchmark:
#   bench   the service's own load tool (ab, redis-benchmark);
#   errors  its error paths (missing pages, refused methods, bad commands);
#   admin   what an operator does (nginx: log reopen with USR1; redis:
#           BGSAVE, SAVE, CONFIG SET, BGREWRITEAOF).
# The demo traces the service once per workload (the reload signal, if any,
# with the first) and merges the traces (`speaker-ctl profile merge` says
# what each one added to which phase).  <svc>_workload is the benchmark
# alone (the scenarios that measure it parse its output).
#
# nginx: Debian's configuration (foreground: `daemon off;` is added to the
# guest's nginx.conf), 2 workers, static default page.
nginx_cmd="nginx"
# Ready when nothing changes any more ("auto": for the tracer no new syscall,
# for speaker-runtime's monitor the same listening ports and tasks, for 4
# windows of 500 ms): nginx's master listens *before* it forks its workers,
# so port:80 would end boot while the workers are still setting up.
nginx_ready="auto"
# SIGHUP: nginx re-reads its configuration and replaces its workers (the
# reload phase; `speaker-runtime kill ID HUP`, `speaker-ctl signal ID HUP`).
nginx_reload_signal="HUP"
nginx_workload="ab -q -n 1000 -c 8 http://127.0.0.1/"
nginx_workloads="bench errors admin"
nginx_workload_bench="ab -q -n 1000 -c 8 http://127.0.0.1/ > /tmp/nginx-bench.out && grep -q 'Failed requests: *0' /tmp/nginx-bench.out && ! grep -q Non-2xx /tmp/nginx-bench.out"
nginx_workload_errors="ab -q -n 200 -c 4 http://127.0.0.1/no-such-page > /tmp/nginx-404.out && grep -q 'Non-2xx responses: *200' /tmp/nginx-404.out \
  && ab -q -n 50 -c 2 -m DELETE http://127.0.0.1/ > /tmp/nginx-405.out && grep -q 'Non-2xx responses: *50' /tmp/nginx-405.out"
nginx_workload_admin="kill -USR1 \$(pgrep -o -x nginx) && sleep 1 && ab -q -n 200 -c 4 http://127.0.0.1/ > /tmp/nginx-admin.out && grep -q 'Failed requests: *0' /tmp/nginx-admin.out"
# What counts as a permission error in nginx's own log.
nginx_log="/var/log/nginx/error.log"
# redis: default save points (so SIGTERM makes it save its dump), data and
# log under /srv/redis.
redis_cmd="redis-server --bind 127.0.0.1 --port 6379 --dir /srv/redis --logfile /srv/redis/redis.log"
# Ready when it answers (it listens before it starts its background
# threads and loads its dump).
redis_ready="cmd:redis-cli ping | grep -q PONG"
redis_reload_signal=""
redis_workload="redis-benchmark -q -n 1000 -c 4 -t set,get,incr,lpush,lpop,sadd,hset,mset && redis-cli info stats"
redis_workloads="bench errors admin"
redis_workload_bench="redis-benchmark -q -n 1000 -c 4 -t set,get,incr,lpush,lpop,sadd,hset,mset > /tmp/redis-bench.out && ! grep -qi error /tmp/redis-bench.out"
redis_workload_errors="redis-cli NOSUCHCOMMAND | grep -q 'unknown command' && redis-cli SET s x | grep -q OK \
  && redis-cli INCR s | grep -q 'not an integer' && redis-cli GET | grep -q 'wrong number of arguments'"
# Waits until INFO persistence says FIELD:VALUE.
redis_wait="redis_wait() { for _ in \$(seq 300); do redis-cli INFO persistence | grep -q \"^\$1:\$2\" && return 0; sleep 0.1; done; return 1; }"
redis_workload_admin="$redis_wait; redis-cli SET persisted yes | grep -q OK \
  && redis-cli BGSAVE | grep -q 'Background saving started' && redis_wait rdb_bgsave_in_progress 0 && redis_wait rdb_last_bgsave_status ok \
  && redis-cli SAVE | grep -q OK \
  && redis-cli CONFIG SET save '900 1 300 10' | grep -q OK \
  && redis-cli CONFIG SET appendonly yes | grep -q OK && redis_wait aof_rewrite_in_progress 0 \
  && redis-cli BGREWRITEAOF | grep -q 'rewriting' && sleep 0.5 && redis_wait aof_rewrite_in_progress 0 && redis_wait aof_last_bgrewrite_status ok \
  && redis-cli CONFIG SET appendonly no | grep -q OK"
redis_log="/srv/redis/redis.log"
services="nginx redis"

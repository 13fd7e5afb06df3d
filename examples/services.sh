# The demo's services, as the Debian guest runs them (qemu/run --rootfs full):
# command, readiness condition and workload.  Sourced by the demo
# (qemu/demo/oci-demo.sh, which also regenerates examples/profiles/) and
# by the VM scenarios of speaker-runtime (tests/src/bin/vm-oci.rs).
#
# nginx: Debian's configuration (foreground: `daemon off;` is added to the
# guest's nginx.conf), 2 workers, static default page.
nginx_cmd="nginx"
# Ready when nothing changes any more ("auto": for the tracer no new syscall,
# for speaker-runtime's monitor the same listening ports and tasks, for 4
# windows of 500 ms): nginx's master listens *before* it forks its workers,
# so port:80 would end boot while the workers are still setting up.
nginx_ready="auto"
nginx_workload="ab -q -n 1000 -c 8 http://127.0.0.1/"
# redis: default save points (so SIGTERM makes it save its dump), data and
# log under /srv/redis.
redis_cmd="redis-server --bind 127.0.0.1 --port 6379 --dir /srv/redis --logfile /srv/redis/redis.log"
# Ready when it answers (it listens before it starts its background
# threads and loads its dump).
redis_ready="cmd:redis-cli ping | grep -q PONG"
redis_workload="redis-benchmark -q -n 1000 -c 4 -t set,get,incr,lpush,lpop,sadd,hset,mset && redis-cli info stats"
services="nginx redis"

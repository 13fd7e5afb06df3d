# The demo's services (nginx, redis, postgres, mariadb), as the Debian guest runs them (qemu/run --rootfs full):
# command, readiness condition, reload signal and workloads.  Sourced by the
# demo (qemu/demo/oci-demo.sh, which also regenerates examples/profiles/) and
# by the VM scenarios of speaker-runtime (tests/src/bin/vm-oci.rs).
#
# Workloads: <svc>_workloads names several, each a shell command
# <svc>_workload_<name> run from outside the container that exits 0 only if
# the service did what it was asked.  They cover what the service does in
# production, not only its benchmark:
#   bench   the service's own load tool (ab, redis-benchmark, pgbench,
#           mysqlslap);
#   errors  its error paths (missing pages, refused methods, bad commands,
#           bad SQL, unknown tables, constraint violations);
#   admin   what an operator does (nginx: log reopen with USR1; redis:
#           BGSAVE, SAVE, CONFIG SET, BGREWRITEAOF; postgres: CHECKPOINT,
#           VACUUM, REINDEX, pg_dump, config reload, log rotation, CREATE and
#           DROP DATABASE; mariadb: ANALYZE/OPTIMIZE/CHECK TABLE, FLUSH
#           LOGS/TABLES, mysqldump, CREATE and DROP DATABASE).
# The demo traces the service once per workload (the reload signal, if any,
# with the first) and merges the traces (`speaker-ctl profile merge` says
# what each one added to which phase).  <svc>_workload is the benchmark
# alone (the scenarios that measure it parse its output).
#
# Held-out workloads (issue 23): <svc>_heldout names a second set, each a
# command <svc>_heldout_<name> in the same style, that is NEVER traced (the
# demo and vm-oci trace <svc>_workloads only, and refuse a name in both
# lists): maintenance and rare paths (table rebuilds, sorts spilling to
# disk, WAL/log switches, VACUUM truncating a table, PL/pgSQL, cancelling
# and killing sessions, dumps and restores; large files, directory
# listings, log rotation, many clients; big values, client kills, lazy
# frees, Lua).  They are run after the switch to the running phase, in
# enforce mode, to measure what a profile survives that nobody traced.  A
# held-out run fails if its command fails, if the container logged a
# denial, or if the service's log matches <svc>_fatal (a crash or a fatal
# error, whatever the client saw).  <svc>_heldout_operator names held-out
# workloads that need an operator's decision (postgres' JIT needs
# `mprotect` with PROT_EXEC: profile "allow": ["mprotect"], `--allow
# mprotect` or annotation io.speaker.allow=mprotect); they are not in
# <svc>_heldout.  Not yet run in a VM when written: see the README.
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
# Held-out (never traced): a 20 MB file (sendfile), a directory listing
# (autoindex on /speaker-list/, set up by scripts/build-guest-rootfs*), a
# rotated log reopened (USR1 after mv: the master creates and chowns the new
# file), 200 concurrent keep-alive clients.
nginx_heldout="largefile autoindex logrotate manyclients"
nginx_heldout_largefile="head -c 20971520 /dev/urandom > /var/www/html/speaker-20m.bin \
  && ab -q -n 10 -c 2 http://127.0.0.1/speaker-20m.bin > /tmp/nginx-large.out && grep -q 'Failed requests: *0' /tmp/nginx-large.out \
  && ! grep -q Non-2xx /tmp/nginx-large.out && grep -q 'Document Length: *20971520 bytes' /tmp/nginx-large.out"
nginx_heldout_autoindex="mkdir -p /var/www/html/speaker-list && for i in \$(seq 50); do echo \$i > /var/www/html/speaker-list/file-\$i.txt; done \
  && ab -q -n 100 -c 4 http://127.0.0.1/speaker-list/ > /tmp/nginx-autoindex.out && grep -q 'Failed requests: *0' /tmp/nginx-autoindex.out \
  && ! grep -q Non-2xx /tmp/nginx-autoindex.out"
nginx_heldout_logrotate="mv /var/log/nginx/access.log /var/log/nginx/access.log.speaker && mv /var/log/nginx/error.log /var/log/nginx/error.log.speaker \
  && kill -USR1 \$(pgrep -o -x nginx) && sleep 1 && ab -q -n 100 -c 2 http://127.0.0.1/ > /tmp/nginx-rotate.out \
  && grep -q 'Failed requests: *0' /tmp/nginx-rotate.out && [ -s /var/log/nginx/access.log ] \
  && cat /var/log/nginx/error.log.speaker >> /var/log/nginx/error.log"
nginx_heldout_manyclients="ab -q -k -n 4000 -c 200 http://127.0.0.1/ > /tmp/nginx-many.out && grep -q 'Failed requests: *0' /tmp/nginx-many.out \
  && ! grep -q Non-2xx /tmp/nginx-many.out"
# What in nginx's error log means a held-out run failed.
# An operator's decision (issue 23's per-service allow list, passed as the
# annotation io.speaker.allow): nginx's master chowns its logs to the worker
# user when it reopens them on SIGUSR1 (log rotation), which no trace sees
# unless it rotates logs; chown is moderate, so balanced does not add it.
nginx_allow="chown"
nginx_fatal="\\[(crit|alert|emerg)\\]|Operation not permitted|exited on signal"

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
# Whether INFO persistence says FIELD:VALUE now (a save's status is final
# once its *_in_progress field is 0: no need to wait for it), and
# redis_wait, which waits until it does (both defined by $redis_wait).
redis_is="redis_is() { redis-cli INFO persistence | grep -q \"^\$1:\$2\"; }"
redis_wait="$redis_is; redis_wait() { for _ in \$(seq 300); do redis_is \"\$1\" \"\$2\" && return 0; sleep 0.1; done; return 1; }"
redis_workload_admin="$redis_wait; redis-cli SET persisted yes | grep -q OK \
  && redis-cli BGSAVE | grep -q 'Background saving started' && redis_wait rdb_bgsave_in_progress 0 && redis_wait rdb_last_bgsave_status ok \
  && redis-cli SAVE | grep -q OK \
  && redis-cli CONFIG SET save '900 1 300 10' | grep -q OK \
  && redis-cli CONFIG SET appendonly yes | grep -q OK && redis_wait aof_rewrite_in_progress 0 \
  && redis-cli BGREWRITEAOF | grep -q 'rewriting' && sleep 0.5 && redis_wait aof_rewrite_in_progress 0 && redis_wait aof_last_bgrewrite_status ok \
  && redis-cli CONFIG SET appendonly no | grep -q OK"
redis_log="/srv/redis/redis.log"
# Held-out (never traced): a 26 MB value (and its background free), client
# kills, persistence under other settings (BGSAVE of over 10000 keys,
# appendfsync always, DEBUG RELOAD when the DEBUG command is enabled), lazy
# frees (UNLINK, FLUSHALL ASYNC, MEMORY PURGE), a Lua script.
redis_heldout="bigvalue clientkill persistence lazyfree lua"
redis_heldout_bigvalue="head -c 20000000 /dev/urandom | base64 -w0 > /tmp/redis-big.txt && redis-cli -x SET speaker:big < /tmp/redis-big.txt | grep -q OK \
  && [ \"\$(redis-cli STRLEN speaker:big)\" -gt 26000000 ] && redis-cli GET speaker:big | head -c 100 | grep -q . \
  && redis-cli APPEND speaker:big tail | grep -qE '^[0-9]+\$' && redis-cli UNLINK speaker:big | grep -qx 1"
redis_heldout_clientkill="(redis-cli BLPOP speaker:never 0 > /tmp/redis-blpop1.out 2>&1 &) ; (redis-cli BLPOP speaker:never 0 > /tmp/redis-blpop2.out 2>&1 &) ; sleep 1 \
  && id=\$(redis-cli CLIENT LIST TYPE normal | grep 'cmd=blpop' | head -1 | sed 's/^id=\\([0-9]*\\) .*/\\1/') && [ -n \"\$id\" ] \
  && redis-cli CLIENT KILL ID \$id | grep -qx 1 && sleep 0.5 \
  && [ \"\$(redis-cli CLIENT KILL TYPE normal SKIPME yes)\" -ge 1 ] && sleep 0.5 && redis-cli PING | grep -q PONG"
redis_heldout_persistence="$redis_wait; redis-benchmark -q -n 20000 -r 20000 -c 4 -P 16 -t set > /dev/null && [ \"\$(redis-cli DBSIZE)\" -gt 10000 ] \
  && redis-cli BGSAVE | grep -q 'Background saving started' && redis_wait rdb_bgsave_in_progress 0 && redis_is rdb_last_bgsave_status ok \
  && redis-cli CONFIG SET appendonly yes | grep -q OK && redis_wait aof_rewrite_in_progress 0 \
  && redis-cli CONFIG SET appendfsync always | grep -q OK && redis-benchmark -q -n 2000 -c 2 -t set,incr > /dev/null \
  && redis-cli CONFIG SET appendfsync everysec | grep -q OK && redis-cli CONFIG SET appendonly no | grep -q OK \
  && r=\$(redis-cli DEBUG RELOAD 2>&1) && { [ \"\$r\" = OK ] || echo \"\$r\" | grep -q 'not allowed'; } \
  && redis-cli LASTSAVE | grep -qE '^[0-9]+\$' && redis-cli PING | grep -q PONG"
redis_heldout_lazyfree="redis-cli CONFIG SET lazyfree-lazy-user-del yes | grep -q OK \
  && redis-benchmark -q -n 5000 -r 5000 -c 4 -P 16 -t lpush,sadd,hset > /dev/null \
  && redis-cli UNLINK mylist myset | grep -qE '^[0-9]+\$' && redis-cli FLUSHALL ASYNC | grep -q OK \
  && redis-cli MEMORY PURGE | grep -q OK && redis-cli DBSIZE | grep -qx 0 \
  && redis-cli CONFIG SET lazyfree-lazy-user-del no | grep -q OK"
redis_heldout_lua="redis-cli EVAL \"for i=1,1000 do redis.call('SET', 'speaker:lua:' .. i, i) end return redis.call('GET', 'speaker:lua:1000')\" 0 | grep -qx 1000 \
  && redis-cli EVAL 'return redis.call(\"NOSUCH\")' 0 2>&1 | grep -qi 'unknown' && redis-cli SCRIPT FLUSH | grep -q OK"
# What in redis' log means a held-out run failed.
redis_fatal="Operation not permitted|Permission denied|Background saving error|Background AOF rewrite terminated with error|Failed opening|Can't|crashed by signal|# Guru Meditation"

# postgres: PostgreSQL 15 on the cluster that scripts/build-guest-rootfs
# initialised in /srv/postgres/data (trust authentication, user postgres).
# PostgreSQL refuses to run as root: setpriv (util-linux) drops to the
# postgres user and execs the postmaster (same process, as Docker's image
# does with gosu), so the switch of uid/gid is in the traced boot phase.  It
# listens on 127.0.0.1 only, with its socket in /srv/postgres (a
# container's /run is its own tmpfs), and its logging collector writes
# /srv/postgres/postgresql.log.  SIGTERM is its smart shutdown (waits for
# the clients, then a shutdown checkpoint).  A configuration reload (SIGHUP,
# as `pg_ctl reload` sends it, or SQL's pg_reload_conf() from any client)
# is part of the running phase, traced by the admin workload, not a reload
# phase: SQL can ask for it without going through the runtime.
postgres_cmd="setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/postgres -D /srv/postgres/data -c listen_addresses=127.0.0.1 -c unix_socket_directories=/srv/postgres -c logging_collector=on -c log_directory=/srv/postgres -c log_filename=postgresql.log"
# Ready when it accepts connections (after its startup or recovery).  The
# clients are called by their path: Debian's /usr/bin wrappers (perl) take
# seconds each to start under TCG.
pg_bin=/usr/lib/postgresql/15/bin
postgres_ready="cmd:$pg_bin/pg_isready -q -h 127.0.0.1 -U postgres"
postgres_reload_signal=""
pg_client="-h 127.0.0.1 -U postgres"
pg_sql="$pg_bin/psql -X -q $pg_client -d postgres"
postgres_workload="$pg_bin/pgbench $pg_client -i -s 1 -q postgres > /dev/null 2>&1 && $pg_bin/pgbench $pg_client -c 4 -j 2 -t 50 postgres"
postgres_workloads="bench errors admin"
postgres_workload_bench="$pg_bin/pgbench $pg_client -i -s 1 -q postgres > /tmp/pg-bench-init.out 2>&1 \
  && $pg_bin/pgbench $pg_client -c 4 -j 2 -t 50 postgres > /tmp/pg-bench.out 2>&1 \
  && grep -q 'number of transactions actually processed: 200/200' /tmp/pg-bench.out && grep -q 'number of failed transactions: 0 ' /tmp/pg-bench.out"
# (one psql, one statement per -c, each its own transaction; psql goes on
# after an error unless ON_ERROR_STOP is set)
postgres_workload_errors="$pg_sql -c 'CREATE TABLE IF NOT EXISTS speaker_errors (id int PRIMARY KEY)' -c 'INSERT INTO speaker_errors VALUES (1) ON CONFLICT DO NOTHING' \
    -c 'SELEC 1' -c 'SELECT * FROM no_such_table' -c 'INSERT INTO speaker_errors VALUES (1)' -c 'SELECT 1/0' > /tmp/pg-errors.out 2>&1; \
  grep -q 'syntax error at or near \"SELEC\"' /tmp/pg-errors.out && grep -q 'relation \"no_such_table\" does not exist' /tmp/pg-errors.out \
  && grep -q 'duplicate key value violates unique constraint' /tmp/pg-errors.out && grep -q 'division by zero' /tmp/pg-errors.out \
  && $pg_sql -tA -c 'SELECT 40 + 2' | grep -qx 42"
postgres_workload_admin="$pg_sql -v ON_ERROR_STOP=1 -tA -c 'CREATE TABLE IF NOT EXISTS speaker_admin (id serial PRIMARY KEY, v text)' \
    -c 'INSERT INTO speaker_admin (v) SELECT md5(i::text) FROM generate_series(1, 1000) i' \
    -c 'VACUUM ANALYZE speaker_admin' -c 'REINDEX TABLE speaker_admin' -c 'CHECKPOINT' \
    -c 'DROP DATABASE IF EXISTS speaker_scratch' -c 'CREATE DATABASE speaker_scratch' -c 'DROP DATABASE speaker_scratch' \
    -c 'SELECT pg_reload_conf()' -c 'SELECT pg_rotate_logfile()' > /tmp/pg-admin.out 2>&1 && [ \"\$(grep -cx t /tmp/pg-admin.out)\" = 2 ] \
  && $pg_bin/pg_dump $pg_client -t speaker_admin postgres > /tmp/pg-dump.sql && grep -q 'COPY public.speaker_admin' /tmp/pg-dump.sql \
  && kill -HUP \$(pgrep -o -x postgres) && sleep 1 && $pg_sql -tA -c 'SELECT count(*) FROM speaker_admin' | grep -qE '^[1-9][0-9]*$'"
postgres_log="/srv/postgres/postgresql.log"
# Held-out (never traced).  The queries stay below jit_above_cost
# (100000), so JIT is only in postgres_heldout_jit (an operator's decision).
#   vacuum_truncate  VACUUM truncating an emptied table (ftruncate: denied,
#                    the server PANICs);
#   rebuild          VACUUM FULL, CLUSTER, a rewriting ALTER TABLE;
#   sort_spill       sorts and hashes spilling to temp files (work_mem
#                    64kB), a parallel query (dynamic shared memory);
#   wal_switch       pg_switch_wal and checkpoints;
#   plpgsql          loading PL/pgSQL (dlopen) and calling a function and a
#                    trigger;
#   cancel_kill      pg_cancel_backend, pg_terminate_backend;
#   dump_restore     pg_dump piped into psql, into a new database.
postgres_heldout="vacuum_truncate rebuild sort_spill wal_switch plpgsql cancel_kill dump_restore"
postgres_heldout_operator="jit"
postgres_heldout_vacuum_truncate="$pg_sql -v ON_ERROR_STOP=1 -tA -c 'DROP TABLE IF EXISTS speaker_trunc' \
    -c 'CREATE TABLE speaker_trunc AS SELECT i, md5(i::text) AS v FROM generate_series(1, 50000) i' \
    -c 'DELETE FROM speaker_trunc' -c 'VACUUM speaker_trunc' -c \"SELECT pg_relation_size('speaker_trunc')\" > /tmp/pg-trunc.out 2>&1 \
  && tail -1 /tmp/pg-trunc.out | grep -qx 0 && $pg_sql -tA -c 'SELECT 40 + 2' | grep -qx 42"
postgres_heldout_rebuild="$pg_sql -v ON_ERROR_STOP=1 -tA -c 'DROP TABLE IF EXISTS speaker_rebuild' \
    -c 'CREATE TABLE speaker_rebuild (id int PRIMARY KEY, v text)' \
    -c 'INSERT INTO speaker_rebuild SELECT i, md5(i::text) FROM generate_series(1, 50000) i' -c 'DELETE FROM speaker_rebuild WHERE id % 2 = 0' \
    -c 'VACUUM FULL speaker_rebuild' -c 'CLUSTER speaker_rebuild USING speaker_rebuild_pkey' \
    -c 'ALTER TABLE speaker_rebuild ALTER COLUMN id TYPE bigint' -c 'REINDEX TABLE speaker_rebuild' \
    -c 'SELECT count(*) FROM speaker_rebuild' > /tmp/pg-rebuild.out 2>&1 && tail -1 /tmp/pg-rebuild.out | grep -qx 25000"
postgres_heldout_sort_spill="$pg_sql -v ON_ERROR_STOP=1 -tA -c 'DROP TABLE IF EXISTS speaker_sort' \
    -c 'CREATE TABLE speaker_sort AS SELECT i, md5(i::text) AS m FROM generate_series(1, 50000) i' -c 'ANALYZE speaker_sort' \
    -c \"SET work_mem = '64kB'\" -c 'SET temp_file_limit = -1' \
    -c 'SELECT count(*) FROM (SELECT m FROM speaker_sort ORDER BY m) s' \
    -c 'SELECT count(*) FROM (SELECT DISTINCT m FROM speaker_sort) s' \
    -c 'SELECT count(*) FROM speaker_sort a JOIN speaker_sort b USING (m)' \
    -c 'SET max_parallel_workers_per_gather = 2' -c 'SET parallel_setup_cost = 0' -c 'SET parallel_tuple_cost = 0' \
    -c 'SET min_parallel_table_scan_size = 0' -c \"SELECT count(*) FROM speaker_sort WHERE m LIKE 'a%'\" > /tmp/pg-sort.out 2>&1 \
  && [ \"\$(grep -cx 50000 /tmp/pg-sort.out)\" = 3 ] && tail -1 /tmp/pg-sort.out | grep -qE '^[1-9][0-9]*\$'"
postgres_heldout_wal_switch="$pg_sql -v ON_ERROR_STOP=1 -tA -c 'CREATE TABLE IF NOT EXISTS speaker_wal (v text)' \
    -c 'INSERT INTO speaker_wal SELECT md5(i::text) FROM generate_series(1, 20000) i' -c 'SELECT pg_switch_wal() IS NOT NULL' \
    -c 'INSERT INTO speaker_wal SELECT md5(i::text) FROM generate_series(1, 20000) i' -c 'SELECT pg_switch_wal() IS NOT NULL' \
    -c 'CHECKPOINT' -c 'SELECT count(*) > 0 FROM pg_ls_waldir()' > /tmp/pg-wal.out 2>&1 && [ \"\$(grep -cx t /tmp/pg-wal.out)\" = 3 ]"
postgres_heldout_plpgsql="$pg_sql -v ON_ERROR_STOP=1 -tA -c 'CREATE EXTENSION IF NOT EXISTS plpgsql' \
    -c 'CREATE OR REPLACE FUNCTION speaker_double(n int) RETURNS int LANGUAGE plpgsql AS \$\$ BEGIN RETURN n * 2; END \$\$' \
    -c 'CREATE TABLE IF NOT EXISTS speaker_trig (v int, doubled int)' \
    -c 'CREATE OR REPLACE FUNCTION speaker_trig_f() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN NEW.doubled := speaker_double(NEW.v); RETURN NEW; END \$\$' \
    -c 'DROP TRIGGER IF EXISTS speaker_trig_t ON speaker_trig' \
    -c 'CREATE TRIGGER speaker_trig_t BEFORE INSERT ON speaker_trig FOR EACH ROW EXECUTE FUNCTION speaker_trig_f()' \
    -c 'INSERT INTO speaker_trig (v) VALUES (21)' -c 'SELECT speaker_double(21)' \
    -c 'DO \$\$ BEGIN PERFORM speaker_double(1); END \$\$' > /tmp/pg-plpgsql.out 2>&1 && tail -1 /tmp/pg-plpgsql.out | grep -qx 42 \
  && $pg_sql -tA -c 'SELECT max(doubled) FROM speaker_trig' | grep -qx 42"
postgres_heldout_cancel_kill="($pg_sql -c 'SELECT pg_sleep(60)' > /tmp/pg-cancel.out 2>&1 &) ; sleep 2 \
  && $pg_sql -tA -c \"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'\" | grep -qx t \
  && sleep 1 && grep -q 'canceling statement due to user request' /tmp/pg-cancel.out \
  && ($pg_sql -c 'SELECT pg_sleep(61)' > /tmp/pg-kill.out 2>&1 &) ; sleep 2 \
  && $pg_sql -tA -c \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(61)'\" | grep -qx t \
  && sleep 1 && grep -q 'terminating connection due to administrator command' /tmp/pg-kill.out \
  && $pg_sql -tA -c 'SELECT 40 + 2' | grep -qx 42"
postgres_heldout_dump_restore="$pg_sql -v ON_ERROR_STOP=1 -c 'CREATE TABLE IF NOT EXISTS speaker_dump (id serial PRIMARY KEY, v text)' \
    -c 'INSERT INTO speaker_dump (v) SELECT md5(i::text) FROM generate_series(1, 5000) i' \
    -c 'DROP DATABASE IF EXISTS speaker_restore' -c 'CREATE DATABASE speaker_restore' > /tmp/pg-dump-prep.out 2>&1 \
  && $pg_bin/pg_dump $pg_client -t speaker_dump postgres > /tmp/pg-heldout-dump.sql \
  && $pg_bin/psql -X -q $pg_client -v ON_ERROR_STOP=1 -d speaker_restore -f /tmp/pg-heldout-dump.sql > /tmp/pg-restore.out 2>&1 \
  && [ \"\$($pg_bin/psql -X -q $pg_client -d speaker_restore -tA -c 'SELECT count(*) FROM speaker_dump')\" = \"\$($pg_sql -tA -c 'SELECT count(*) FROM speaker_dump')\" ] \
  && $pg_sql -c 'DROP DATABASE speaker_restore'"
# JIT compiles to executable memory (mprotect with PROT_EXEC): it needs the
# operator's allow; balanced alone gives mprotect without PROT_EXEC.
postgres_heldout_jit="$pg_sql -v ON_ERROR_STOP=1 -tA -c 'SET jit = on' -c 'SET jit_above_cost = 0' -c 'SET jit_inline_above_cost = 0' \
    -c 'SET jit_optimize_above_cost = 0' -c 'SELECT sum(i) FROM generate_series(1, 100000) i' > /tmp/pg-jit.out 2>&1 \
  && tail -1 /tmp/pg-jit.out | grep -qx 5000050000"
# What in PostgreSQL's log means a held-out run failed (FATAL alone is not:
# pg_terminate_backend logs one on purpose).
postgres_fatal="PANIC|was terminated by signal|terminating any other active server processes|Operation not permitted|fatal llvm error"

# mariadb: MariaDB 10.11 (the paper's MySQL) on the data directory that
# scripts/build-guest-rootfs initialised in /srv/mariadb/data.  mariadbd
# starts as root and switches to the mysql user itself (--user); it
# listens on 127.0.0.1 and on /srv/mariadb/mysqld.sock, which the clients
# find through /etc/mysql/conf.d/speaker.cnf (root logs in through the
# socket, unix_socket authentication).  SIGTERM is its clean shutdown.
mariadb_cmd="mariadbd --user=mysql --datadir=/srv/mariadb/data --socket=/srv/mariadb/mysqld.sock --pid-file=/srv/mariadb/mariadbd.pid --bind-address=127.0.0.1 --log-error=/srv/mariadb/mariadb.log"
# Ready when it answers (it opens its socket once InnoDB is up).
mariadb_ready="cmd:mysqladmin --silent ping"
mariadb_reload_signal=""
mariadb_workload="mysqlslap --auto-generate-sql --concurrency=4 --iterations=2 --number-of-queries=200"
mariadb_workloads="bench errors admin"
mariadb_workload_bench="mysqlslap --auto-generate-sql --concurrency=4 --iterations=2 --number-of-queries=200 > /tmp/mariadb-bench.out 2>&1 \
  && grep -q 'Average number of seconds to run all queries' /tmp/mariadb-bench.out && ! grep -qi error /tmp/mariadb-bench.out"
mariadb_workload_errors="mysql -e 'SELEC 1' 2>&1 | grep -q 'error in your SQL syntax' \
  && mysql -e 'SELECT * FROM mysql.no_such_table' 2>&1 | grep -q 'no_such_table.* exist' \
  && mysql no_such_database -e 'SELECT 1' 2>&1 | grep -q 'Unknown database' \
  && mysql -e 'CREATE DATABASE IF NOT EXISTS speaker' && mysql speaker -e 'CREATE TABLE IF NOT EXISTS errors (id int PRIMARY KEY); INSERT IGNORE INTO errors VALUES (1)' \
  && mysql -e 'INSERT INTO speaker.errors VALUES (1)' 2>&1 | grep -q 'Duplicate entry' \
  && mysql -NB -e 'SELECT 40 + 2' | grep -qx 42"
mariadb_workload_admin="mysql -e 'CREATE DATABASE IF NOT EXISTS speaker' \
  && mysql speaker -e 'CREATE TABLE IF NOT EXISTS admin (id int AUTO_INCREMENT PRIMARY KEY, v varchar(64)); INSERT INTO admin (v) SELECT md5(seq) FROM seq_1_to_1000' \
  && mysql -e 'ANALYZE TABLE speaker.admin' | grep -q OK && mysql -e 'OPTIMIZE TABLE speaker.admin' | grep -q OK && mysql -e 'CHECK TABLE speaker.admin' | grep -q OK \
  && mysql -e 'FLUSH LOGS' && mysql -e 'FLUSH TABLES' && mysql -e 'FLUSH STATUS' && mysql -e 'SET GLOBAL max_connections = 200' \
  && mysqldump speaker admin > /tmp/mariadb-dump.sql && grep -q 'INSERT INTO .admin' /tmp/mariadb-dump.sql \
  && mysql -e 'DROP DATABASE IF EXISTS speaker_scratch; CREATE DATABASE speaker_scratch; DROP DATABASE speaker_scratch' \
  && mysqladmin status | grep -q Uptime"
mariadb_log="/srv/mariadb/mariadb.log"
# Held-out (never traced):
#   rebuild       ALTER TABLE ... FORCE, a copying ALTER, OPTIMIZE of a big
#                 table;
#   sort_spill    filesort and on-disk temporary tables (sort_buffer_size
#                 32k, tmp_table_size 16k);
#   log_switch    FLUSH BINARY LOGS (when the binary log is on), FLUSH
#                 ENGINE LOGS, FLUSH ERROR LOGS;
#   kill          KILL QUERY and KILL CONNECTION of sleeping sessions;
#   dump_restore  mysqldump piped into the client, into a new database.
mariadb_heldout="rebuild sort_spill log_switch kill dump_restore"
mariadb_heldout_rebuild="mysql -e 'CREATE DATABASE IF NOT EXISTS speaker' \
  && mysql speaker -e 'DROP TABLE IF EXISTS heldout; CREATE TABLE heldout (id int AUTO_INCREMENT PRIMARY KEY, v varchar(64)); INSERT INTO heldout (v) SELECT md5(seq) FROM seq_1_to_50000; DELETE FROM heldout WHERE id % 2 = 0' \
  && mysql speaker -e 'ALTER TABLE heldout FORCE' && mysql speaker -e 'ALTER TABLE heldout ADD COLUMN w int, ALGORITHM=COPY' \
  && mysql speaker -e 'ALTER TABLE heldout ADD INDEX (v), ALGORITHM=INPLACE' && mysql -e 'OPTIMIZE TABLE speaker.heldout' | grep -q OK \
  && mysql -NB speaker -e 'SELECT count(*) FROM heldout' | grep -qx 25000"
mariadb_heldout_sort_spill="mysql -e 'CREATE DATABASE IF NOT EXISTS speaker' \
  && mysql speaker -e 'DROP TABLE IF EXISTS sorted; CREATE TABLE sorted (id int PRIMARY KEY, v varchar(64)); INSERT INTO sorted SELECT seq, md5(seq) FROM seq_1_to_50000' \
  && mysql -NB speaker -e 'SET SESSION sort_buffer_size = 32768; SELECT count(*) FROM (SELECT v FROM sorted ORDER BY v LIMIT 1000000) s' | grep -qx 50000 \
  && mysql -NB speaker -e 'SET SESSION tmp_table_size = 16384, max_heap_table_size = 16384; SELECT count(*) FROM (SELECT v, count(*) FROM sorted GROUP BY v) g' | grep -qx 50000 \
  && mysql -NB -e \"SHOW SESSION STATUS LIKE 'Created_tmp_disk_tables'\" | grep -q Created_tmp_disk_tables"
mariadb_heldout_log_switch="{ [ \"\$(mysql -NB -e 'SELECT @@log_bin')\" != 1 ] || mysql -e 'FLUSH BINARY LOGS'; } \
  && mysql -e 'FLUSH ENGINE LOGS' && mysql -e 'FLUSH ERROR LOGS' && mysql -e 'FLUSH TABLES WITH READ LOCK; UNLOCK TABLES' \
  && mysqladmin status | grep -q Uptime"
mariadb_heldout_kill="(mysql -e 'SELECT SLEEP(60)' > /tmp/mariadb-killq.out 2>&1 &) ; (mysql -e 'SELECT SLEEP(61)' > /tmp/mariadb-killc.out 2>&1 &) ; sleep 2 \
  && q=\$(mysql -NB -e \"SELECT id FROM information_schema.processlist WHERE info = 'SELECT SLEEP(60)'\") && [ -n \"\$q\" ] && mysql -e \"KILL QUERY \$q\" \
  && c=\$(mysql -NB -e \"SELECT id FROM information_schema.processlist WHERE info = 'SELECT SLEEP(61)'\") && [ -n \"\$c\" ] && mysql -e \"KILL CONNECTION \$c\" \
  && sleep 1 && grep -q 'interrupted\\|^1\$' /tmp/mariadb-killq.out && grep -qi 'lost connection\\|server has gone away\\|interrupted' /tmp/mariadb-killc.out \
  && mysql -NB -e 'SELECT 40 + 2' | grep -qx 42"
mariadb_heldout_dump_restore="mysql -e 'CREATE DATABASE IF NOT EXISTS speaker' \
  && mysql speaker -e 'CREATE TABLE IF NOT EXISTS dumped (id int AUTO_INCREMENT PRIMARY KEY, v varchar(64)); INSERT INTO dumped (v) SELECT md5(seq) FROM seq_1_to_5000' \
  && mysql -e 'DROP DATABASE IF EXISTS speaker_restore; CREATE DATABASE speaker_restore' \
  && mysqldump --single-transaction speaker dumped > /tmp/mariadb-heldout-dump.sql && mysql speaker_restore < /tmp/mariadb-heldout-dump.sql \
  && [ \"\$(mysql -NB -e 'SELECT count(*) FROM speaker_restore.dumped')\" = \"\$(mysql -NB -e 'SELECT count(*) FROM speaker.dumped')\" ] \
  && mysql -e 'DROP DATABASE speaker_restore'"
# What in MariaDB's log means a held-out run failed.
mariadb_fatal="\\[ERROR\\]|Operation not permitted|got signal|Assertion|InnoDB: .*failed"

services="nginx redis postgres mariadb"

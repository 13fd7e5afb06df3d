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
services="nginx redis postgres mariadb"

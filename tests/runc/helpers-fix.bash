
# --- appended by speaker's scripts/runc-suite (tests/runc/helpers-fix.bash) ---
# runc 1.1.15's setup_recvtty returns before recvtty has written the pid
# file teardown_recvtty kills it by: a test that ends at once (a skip
# right after setup) left recvtty running, and with it bats' output pipe
# open, so bats never finished.  The same, waiting (at most 5 s) for the
# pid file.
function setup_recvtty() {
	[ -z "$ROOT" ] && return 1 # must not be called without ROOT set
	local dir="$ROOT/tty" i

	mkdir "$dir"
	export CONSOLE_SOCKET="$dir/sock"

	# We need to start recvtty in the background, so we double fork in the shell.
	("$RECVTTY" --pid-file "$dir/pid" --mode null "$CONSOLE_SOCKET" &) &
	for i in $(seq 100); do
		[ -s "$dir/pid" ] && return 0
		sleep 0.05
	done
	echo "recvtty wrote no pid file in 5 s" >&2
	return 1
}

# Helpers sourced by the guest test scripts. Each script prints one TAP line
# per check, without numbers: the host numbers them.

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }

# check DESCRIPTION COMMAND...: runs COMMAND and reports whether it succeeded.
check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# contains TEXT PATTERN: whether TEXT contains the fixed string PATTERN.
contains() {
	case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac
}

# diag TEXT: a TAP comment the host passes through.
diag() { echo "# $*"; }

load_module() {
	if ! insmod /opt/portcullis/portcullis.ko; then
		not_ok "module loads"
		exit 0
	fi
}

# Every file of the guest image that a test may run or map, except what the
# tests create under /tmp.
system_files() {
	find /bin/busybox /lib /lib64 /usr /opt -type f 2>/dev/null
}

# Approves every system file; prints nothing on success.
approve_system() {
	# shellcheck disable=SC2046
	portcullis policy add $(system_files) >/dev/null
}

# Starts a JSON event listener writing to $1 and waits until it subscribed.
start_events() {
	portcullis events --follow --json --ready >"$1" 2>/tmp/events.err &
	EVENTS_PID=$!
	i=0
	while ! grep -q ready /tmp/events.err 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { not_ok "event listener started"; return 1; }
		sleep 0.1
	done
}

stop_events() {
	sleep 1
	kill "$EVENTS_PID" 2>/dev/null
	wait "$EVENTS_PID" 2>/dev/null
}

# status_field NAME: one field of `portcullis status --json`.
status_field() {
	portcullis status --json | sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -n 1
}

# patch_copy SOURCE DEST: copies SOURCE and changes its last byte, which is
# part of the ELF section headers that the loader does not read.
patch_copy() {
	cp "$1" "$2"
	size=$(wc -c <"$2")
	last=$(tail -c 1 "$2" | od -An -tu1 | tr -d ' ')
	if [ "$last" = 1 ]; then byte='\002'; else byte='\001'; fi
	printf "$byte" | dd of="$2" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
}

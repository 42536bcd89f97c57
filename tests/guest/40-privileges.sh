# Only CAP_SYS_ADMIN may change state; malformed requests get EINVAL and
# change nothing.
. /tests/lib.sh
load_module
approve_system
portcullis mode learn
generation=$(status_field policy_generation)

as_nobody() { su -s /bin/sh -c "$*" nobody; }

out=$(as_nobody portcullis mode off 2>&1)
check "unprivileged mode change fails" [ $? -ne 0 ]
check "unprivileged mode change gets EPERM" contains "$out" 'Operation not permitted'
out=$(as_nobody portcullis policy add /opt/pctest/hello 2>&1)
check "unprivileged policy change gets EPERM" contains "$out" 'Operation not permitted'
out=$(as_nobody portcullis lock 2>&1)
check "unprivileged lock gets EPERM" contains "$out" 'Operation not permitted'
check "unprivileged status works" as_nobody portcullis status

# Command and attribute numbers: SET_MODE=2 with MODE=4; ADD_ENTRIES=7 with
# ENTRIES=19; SET_AUDIT=9 with AUDIT_ALLOWED=31; POLICY_COMMIT=5.
expect_einval() {
	desc=$1
	shift
	out=$(portcullis debug-raw "$@" 2>&1)
	if [ $? -ne 0 ] && echo "$out" | grep -q 'Invalid argument'; then ok "$desc"; else not_ok "$desc"; diag "$out"; fi
}
expect_einval "mode out of range gets EINVAL" 2 4:07
expect_einval "mode of the wrong size gets EINVAL" 2 4:02000000
expect_einval "missing mode gets EINVAL" 2
expect_einval "unknown attribute gets EINVAL" 2 4:02 200:00
# One entry nest whose digest has 31 bytes.
digest31=$(printf '%062d' 0)
expect_einval "short digest gets EINVAL" 7 "19:28000180240001${digest31}"
expect_einval "entries that are not nested get EINVAL" 7 19:0011
expect_einval "commit without begin gets EINVAL" 5
expect_einval "audit setting out of range gets EINVAL" 9 31:02

check "mode unchanged after bad requests" [ "$(status_field mode)" = learn ]
check "policy unchanged after bad requests" [ "$(status_field policy_generation)" = "$generation" ]

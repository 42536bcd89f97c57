# Enforce mode: approved files run; changed copies, unapproved libraries,
# scripts and memfd content are denied with EACCES and reported.
. /tests/lib.sh
load_module
approve_system
portcullis audit-allowed off
start_events /tmp/events.json || exit 0
portcullis mode enforce

check "approved binary runs" /opt/pctest/hello
cp /opt/pctest/hello /tmp/hello-copy
check "unchanged copy of an approved binary runs" /tmp/hello-copy
patch_copy /opt/pctest/hello /tmp/hello-patched
out=$(/tmp/hello-patched 2>&1)
check "patched copy is denied" [ $? -ne 0 ]
check "patched copy fails with Permission denied" contains "$out" 'Permission denied'

ld=/lib64/ld-linux-x86-64.so.2
check "ld.so runs an approved binary" $ld /opt/pctest/hello
out=$($ld /tmp/hello-patched 2>&1)
check "ld.so refuses to map an unapproved binary" [ $? -ne 0 ]
diag "ld.so said: $out"

check "dlopen of an approved library works" try_dlopen /opt/pctest/libpctest.so
patch_copy /opt/pctest/libpctest.so /tmp/libpctest-patched.so
out=$(try_dlopen /tmp/libpctest-patched.so 2>&1)
check "dlopen of an unapproved library fails" [ $? -ne 0 ]
diag "dlopen said: $out"

check "mprotect PROT_EXEC of an approved file works" try_mprotect /opt/pctest/libpctest.so
out=$(try_mprotect /tmp/libpctest-patched.so 2>&1)
check "mprotect PROT_EXEC of an unapproved file fails" [ $? = 1 ]
check "mprotect fails with EACCES" contains "$out" 'Permission denied'

printf '#!/bin/sh\necho script ran\n' >/tmp/script.sh
chmod +x /tmp/script.sh
out=$(/tmp/script.sh 2>&1)
check "unapproved script with an approved interpreter is denied" [ $? -ne 0 ]
portcullis policy add /tmp/script.sh >/dev/null
check "the same script runs once approved" sh -c "/tmp/script.sh | grep -q 'script ran'"

out=$(memfd_exec /tmp/hello-patched 2>&1)
check "fexecve of unapproved memfd content is denied" [ $? = 1 ]
check "fexecve fails with EACCES" contains "$out" 'Permission denied'
check "fexecve of approved memfd content runs" memfd_exec /opt/pctest/hello

stop_events
check "deny event for the patched binary" sh -c "grep '\"path\":\"/tmp/hello-patched\"' /tmp/events.json | grep -q '\"verdict\":\"deny\"'"
check "deny event for the unapproved library" sh -c "grep '\"path\":\"/tmp/libpctest-patched.so\"' /tmp/events.json | grep -q '\"verdict\":\"deny\"'"
check "deny event from file_mprotect" grep -q '"hook":"file_mprotect","verdict":"deny"' /tmp/events.json
check "deny event for the memfd" grep -q '"path":"/memfd:portcullis-test' /tmp/events.json
check "status counts denials" [ "$(status_field denied)" != 0 ]

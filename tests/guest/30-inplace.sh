# A file changed in place keeps its inode but not its approval; restoring the
# content restores the approval.
. /tests/lib.sh
load_module
cp /opt/pctest/hello /tmp/hello
approve_system
portcullis mode enforce

check "approved file runs" /tmp/hello
inode_before=$(stat -c %i /tmp/hello)
size=$(wc -c </tmp/hello)
printf '\001' | dd of=/tmp/hello bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
check "file keeps its inode" [ "$(stat -c %i /tmp/hello)" = "$inode_before" ]
out=$(/tmp/hello 2>&1)
check "file changed in place is denied at its next exec" [ $? -ne 0 ]
check "denial is Permission denied" contains "$out" 'Permission denied'
dd if=/opt/pctest/hello of=/tmp/hello bs=1 skip=$((size - 1)) seek=$((size - 1)) conv=notrunc 2>/dev/null
check "restored content matches the original" cmp -s /opt/pctest/hello /tmp/hello
check "restored file runs again" /tmp/hello

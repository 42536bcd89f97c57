# A path-bound entry approves its digest only at its own path: a copy or a
# hard link elsewhere with the same content is denied.
. /tests/lib.sh
load_module
approve_system
mkdir -p /opt/pb
patch_copy /opt/pctest/hello /opt/pb/tool
check "path-bound entry is added" portcullis policy add --path-bound /opt/pb/tool
start_events /tmp/events.json || exit 0
portcullis mode enforce

check "file runs at its approved path" /opt/pb/tool
cp /opt/pb/tool /tmp/tool
out=$(/tmp/tool 2>&1)
check "same content at another path is denied" [ $? -ne 0 ]
check "denial is Permission denied" contains "$out" 'Permission denied'
ln /opt/pb/tool /opt/pb/link
out=$(/opt/pb/link 2>&1)
check "hard link at another path is denied" [ $? -ne 0 ]
check "file still runs at its approved path after the denials" /opt/pb/tool
stop_events
check "denial reason is path-mismatch" sh -c "grep '\"path\":\"/tmp/tool\"' /tmp/events.json | grep -q '\"reason\":\"path-mismatch\"'"

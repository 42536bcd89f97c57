# Once locked, the mode cannot be lowered, the module cannot be unloaded, and
# entries can still be added.
. /tests/lib.sh
load_module
approve_system
portcullis mode learn
check "lock succeeds" portcullis lock
check "status shows locked" [ "$(status_field locked)" = true ]
out=$(portcullis mode off 2>&1)
check "lowering the mode after lock fails" [ $? -ne 0 ]
check "lowering the mode gets EPERM" contains "$out" 'Operation not permitted'
check "mode stays learn" [ "$(status_field mode)" = learn ]
check "raising the mode after lock works" portcullis mode enforce
out=$(rmmod portcullis 2>&1)
check "rmmod after lock fails" [ $? -ne 0 ]
check "module still loaded" grep -q '^portcullis ' /proc/modules
printf '#!/bin/sh\necho added\n' >/tmp/added.sh
chmod +x /tmp/added.sh
check "adding entries after lock works" portcullis policy add /tmp/added.sh
check "added script runs" /tmp/added.sh
check "enforcement still works after lock" sh -c "cp /opt/pctest/hello /tmp/h && printf x >>/tmp/h && ! /tmp/h 2>/dev/null"

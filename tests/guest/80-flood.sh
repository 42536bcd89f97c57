# timeout: 240
# A flood of denied execs with no listener, then with a stalled listener:
# exec never waits for user space, and lost events are counted.
. /tests/lib.sh
load_module
approve_system
portcullis mode enforce
patch_copy /opt/pctest/hello /tmp/denied

i=0
while [ $i -lt 300 ]; do /tmp/denied 2>/dev/null; i=$((i + 1)); done
ok "300 denied execs finished with no listener"
dropped=$(status_field events_dropped)
check "events without a listener are counted as dropped" [ "$dropped" -ge 300 ]

portcullis events --follow --json --ready >/tmp/stalled.json 2>/tmp/events.err &
listener=$!
sleep 2
kill -STOP $listener
i=0
while [ $i -lt 3000 ]; do /tmp/denied 2>/dev/null; i=$((i + 1)); done
ok "3000 denied execs finished with a stalled listener"
sent=$(status_field events_sent)
dropped_after=$(status_field events_dropped)
diag "sent $sent, dropped $dropped_after"
check "events beyond the listener's buffer are counted as dropped" [ "$dropped_after" -gt "$dropped" ]
kill -CONT $listener
kill $listener
wait $listener 2>/dev/null
check "status still answers" portcullis status

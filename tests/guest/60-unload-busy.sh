# timeout: 240
# rmmod while four exec loops run: no oops, no warning, the loops go on.
. /tests/lib.sh
load_module
portcullis mode learn

for i in 1 2 3 4; do
	(while :; do /opt/pctest/hello >/dev/null; /bin/true; echo "$i" >>/tmp/loop$i; done) &
done
sleep 5
check "module unloads while exec loops run" rmmod portcullis
before=$(cat /tmp/loop1 /tmp/loop2 /tmp/loop3 /tmp/loop4 | wc -l)
sleep 3
after=$(cat /tmp/loop1 /tmp/loop2 /tmp/loop3 /tmp/loop4 | wc -l)
check "loops keep running after unload" [ "$after" -gt "$before" ]
check "module is gone" sh -c "! grep -q '^portcullis ' /proc/modules"
check "module loads again" insmod /opt/portcullis/portcullis.ko
portcullis mode learn
sleep 2
check "module unloads again under load" rmmod portcullis
kill $(jobs -p) 2>/dev/null
wait 2>/dev/null
ok "exec loops stopped"

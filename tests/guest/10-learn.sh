# Learn mode reports each new digest, computed in the kernel, equal to the
# guest's sha256sum of the file.
. /tests/lib.sh
load_module

start_events /tmp/events.json || exit 0
portcullis mode learn
/bin/true
echo hello | /bin/cat >/dev/null
/bin/ls / >/dev/null
/opt/pctest/hello >/dev/null
stop_events

check "learn mode produced events" [ -s /tmp/events.json ]
for file in /bin/busybox /opt/pctest/hello /lib/x86_64-linux-gnu/libc.so.6; do
	expected=$(sha256sum "$file" | cut -d' ' -f1)
	line=$(grep "\"path\":\"$file\"" /tmp/events.json | head -n 1)
	if [ -z "$line" ]; then
		not_ok "event for $file"
		continue
	fi
	check "digest of $file equals sha256sum" sh -c "echo '$line' | grep -q '\"sha256\":\"$expected\"'"
done
check "events are allow verdicts in learn mode" sh -c "! grep -q '\"verdict\":\"deny\"' /tmp/events.json"
busybox_events=$(grep -c '"path":"/bin/busybox"' /tmp/events.json)
check "busybox reported once per policy generation, not per exec" [ "$busybox_events" = 1 ]
check "libc reported through mmap_file" sh -c "grep '\"path\":\"/lib/x86_64-linux-gnu/libc.so.6\"' /tmp/events.json | grep -q mmap_file"

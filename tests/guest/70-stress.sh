# timeout: 420
# Eight workers exec approved binaries and scripts for 60 s while the policy
# is replaced 100 times: no approved exec may be denied.
. /tests/lib.sh
load_module

mkdir -p /opt/stress
printf '#!/bin/sh\nexit 0\n' >/opt/stress/ok.sh
chmod +x /opt/stress/ok.sh
portcullis policy generate --root / -o /tmp/a.json --quiet 2>/tmp/generate.err
check "policy generated from the guest root" [ -s /tmp/a.json ]
# A second policy with the same approvals plus one more, so that every
# replacement changes the policy in force.
printf '#!/bin/sh\nexit 1\n' >/opt/stress/extra.sh
chmod +x /opt/stress/extra.sh
portcullis policy generate --root / -o /tmp/b.json --quiet 2>>/tmp/generate.err
rm /opt/stress/extra.sh
check "second policy differs" sh -c "portcullis policy diff /tmp/a.json /tmp/b.json >/dev/null; [ \$? = 4 ]"
check "policy loads" portcullis policy load /tmp/a.json
check "enforce mode set" portcullis mode enforce

worker() {
	end=$(($(date +%s) + 60))
	runs=0
	failures=0
	while [ "$(date +%s)" -lt "$end" ]; do
		/opt/pctest/hello >/dev/null 2>&1 || failures=$((failures + 1))
		/opt/stress/ok.sh || failures=$((failures + 1))
		/bin/true || failures=$((failures + 1))
		runs=$((runs + 3))
	done
	echo "$runs $failures" >"/tmp/worker.$1"
}
for i in 1 2 3 4 5 6 7 8; do worker $i & done

replaced=0
failed_loads=0
while [ $replaced -lt 100 ]; do
	if [ $((replaced % 2)) = 0 ]; then file=/tmp/b.json; else file=/tmp/a.json; fi
	portcullis policy load "$file" >/dev/null || failed_loads=$((failed_loads + 1))
	replaced=$((replaced + 1))
	sleep 0.3
done
wait

check "policy replaced 100 times without error" [ "$failed_loads" = 0 ]
runs=0
failures=0
for i in 1 2 3 4 5 6 7 8; do
	read -r r f <"/tmp/worker.$i"
	runs=$((runs + r))
	failures=$((failures + f))
done
diag "$runs execs by 8 workers, $failures failed"
check "workers ran" [ "$runs" -gt 100 ]
check "no approved exec was denied" [ "$failures" = 0 ]
check "module counted no denial" [ "$(status_field denied)" = 0 ]

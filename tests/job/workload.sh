#!/bin/bash
# The real workload of the main job: everyday commands of a Debian system.
# Prints one TAP line per command; every one must succeed under enforcement.
set -u
export LC_ALL=C

run() { # run DESCRIPTION COMMAND...
	local desc=$1
	shift
	if out=$("$@" 2>&1); then
		echo "ok - $desc"
	else
		echo "not ok - $desc"
		echo "$out" | head -n 5 | sed 's/^/# /'
	fi
}

run "dpkg -l lists bash" bash -c "dpkg -l | grep -q '^ii  bash '"
run "dpkg -S finds the owner of /bin/ls" bash -c "dpkg -S /bin/ls | grep -q coreutils"
run "dpkg-query shows the libc6 version" bash -c "dpkg-query -W -f='\${Version}' libc6 | grep -q '^2\\.'"
run "apt-cache policy bash" bash -c "apt-cache policy bash | grep -q Installed"
run "apt-cache show coreutils" bash -c "apt-cache show coreutils | grep -q '^Package: coreutils'"
run "apt-cache depends dpkg" bash -c "apt-cache depends dpkg | grep -q Depends"

work=$(mktemp -d)
run "coreutils: seq, sort, uniq, wc" bash -c "seq 1 500 | sort -r | uniq | wc -l | grep -qx 500"
run "coreutils: sha256sum and cut" bash -c "echo portcullis | sha256sum | cut -c1-8 | grep -Eq '^[0-9a-f]{8}$'"
run "coreutils: cp, mv, stat, rm" bash -c "cp /etc/os-release $work/a && mv $work/a $work/b && stat -c %s $work/b >/dev/null && rm $work/b"
run "coreutils: date, tr, head, tail" bash -c "date -u +%Y | tr 0-9 a-j | head -c 4 | tail -c 4 >/dev/null"
run "coreutils: ls, du, df" bash -c "ls -la /usr/bin >/dev/null && du -s /etc >/dev/null && df / >/dev/null"

cat >"$work/script.sh" <<'SCRIPT'
#!/bin/bash
count() { local n=0; for f in /usr/bin/*; do n=$((n + 1)); done; echo "$n"; }
total=$(count)
[ "$total" -gt 50 ] && echo "many programs: $total"
SCRIPT
run "bash script with functions and loops" bash "$work/script.sh"
run "approved job script runs by its #! line" /opt/portcullis-job/check-system.sh

run "perl one-liner" bash -c "perl -e 'print join(q(,), map { \$_ * 2 } 1..5), qq(\n)' | grep -qx '2,4,6,8,10'"
run "perl with an XS module (List::Util)" bash -c "perl -MList::Util=sum -e 'print sum(1..10)' | grep -qx 55"
run "grep, sed and awk pipeline" bash -c "dpkg -l | awk '/^ii/ {print \$2}' | grep -c '^lib' | sed 's/^/libs: /' | grep -q 'libs: [0-9]'"
run "awk report over /etc/passwd" bash -c "awk -F: '\$3 == 0 {print \$1}' /etc/passwd | grep -qx root"

for lib in libz.so.1 libssl.so.3 libexpat.so.1 libsqlite3.so.0 libxml2.so.2; do
	run "dlopen $lib" /usr/local/bin/pc-dlopen "$lib"
done
rm -rf "$work"

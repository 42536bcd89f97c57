# timeout: 900
# Exec cost of Portcullis, printed as TAP comments; see scripts/bench-exec.
. /tests/lib.sh
n=${BENCH_EXECS:-2000}
prog=/opt/pctest/true_static

# The median of three runs of exec_bench, in microseconds per exec.
measure() {
	for _ in 1 2 3; do exec_bench "$n" "$prog"; done | sort -n | sed -n 2p
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

absent=$(measure)
insmod /opt/portcullis/portcullis.ko
off=$(measure)
approve_system
portcullis mode learn
learn=$(measure)
portcullis mode enforce
exec_bench 10 "$prog" >/dev/null
enforce=$(measure)

# First exec of a 10 MiB approved program: the kernel hashes it once.
cp "$prog" /opt/big
head -c 10485760 /dev/urandom >>/opt/big
portcullis policy add /opt/big >/dev/null
cold=$(exec_bench 1 /opt/big)
warm=$(exec_bench 20 /opt/big)
hash=$(exec_bench 1 /bin/sha256sum /opt/big)

diag "fork+exec of $prog, mean of $n runs, median of 3 (microseconds):"
diag "  module absent      $absent"
diag "  loaded, mode off   $off   ratio $(ratio "$off" "$absent")"
diag "  learn              $learn   ratio $(ratio "$learn" "$absent")"
diag "  enforce, warm      $enforce   ratio $(ratio "$enforce" "$absent")"
diag "first exec of a 10 MiB approved program (microseconds):"
diag "  cold (hashed)      $cold"
diag "  warm (cached)      $warm"
diag "  sha256sum of it    $hash"
diag "  (cold - warm) / sha256sum   $(ratio "$(awk -v c="$cold" -v w="$warm" 'BEGIN { print c - w }')" "$hash")"
ok "exec benchmark finished"

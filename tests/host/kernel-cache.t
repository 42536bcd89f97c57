#!/usr/bin/env bash
# The kernel build cache: a second build does no work, and the cache key
# follows the config fragment.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
result() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

bash "$repo/scripts/build-kernel.sh" >"$work/build.out" 2>&1
result $? "kernel build succeeds"
result $(grep -q "^kernel: cached build at" "$work/build.out"; echo $?) "second build reuses the cache"
result $(! grep -q "building in" "$work/build.out"; echo $?) "second build compiles nothing"

default_dir=$(bash -c ". '$repo/scripts/common.sh'; kernel_dir")
cp "$repo/scripts/kernel.config" "$work/fragment.config"
same_dir=$(KERNEL_FRAGMENT="$work/fragment.config" bash -c ". '$repo/scripts/common.sh'; kernel_dir")
echo "CONFIG_MAGIC_SYSRQ=y" >>"$work/fragment.config"
changed_dir=$(KERNEL_FRAGMENT="$work/fragment.config" bash -c ". '$repo/scripts/common.sh'; kernel_dir")
result $([ "$same_dir" = "$default_dir" ]; echo $?) "same fragment gives the same cache entry"
result $([ "$changed_dir" != "$default_dir" ]; echo $?) "changed fragment gives a new cache entry, so it rebuilds"
echo "1..$n"

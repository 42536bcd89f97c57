# The module loads, reports its version, replies to status, and unloads.
. /tests/lib.sh

check "module loads" insmod /opt/portcullis/portcullis.ko
check "module is listed" grep -q '^portcullis ' /proc/modules
version=$(cat /sys/module/portcullis/version 2>/dev/null)
check "module reports its version in /sys/module/portcullis" [ -n "$version" ]
check "module reports its version in dmesg" sh -c "dmesg | grep -q 'portcullis: version $version loaded'"
check "status answers with mode off" [ "$(status_field mode)" = off ]
check "status reports the module version" [ "$(status_field module_version)" = "$version" ]
check "module unloads" rmmod portcullis
check "module is gone after unload" sh -c "! grep -q '^portcullis ' /proc/modules"
check "unload is logged" sh -c "dmesg | grep -q 'portcullis: unloaded'"
out=$(portcullis status 2>&1)
code=$?
check "status without the module exits 3" [ "$code" = 3 ]
check "status without the module says it is not loaded" contains "$out" 'not loaded'

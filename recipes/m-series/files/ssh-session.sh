# What the boot test runs on m-series over SSH (sh -s): who and where it is, then ZFS on the
# second NVMe disk: a pool, a compressed dataset, 32 MiB written, a scrub, an export and an
# import, and the data read back the same.
set -eu
echo "M-SERIES SSH OK user=$(id -un) host=$(hostname) kernel=$(uname -r)"
m-series-info
# the pool's disk is the NVMe controller with the test's serial number (no udev, no by-id links)
dev=
for c in /sys/class/nvme/nvme*; do
  # NVMe serial numbers are space-padded to 20 characters
  if [ "$(sed 's/ *$//' "$c/serial")" = m-series-tank ]; then dev=/dev/$(basename "$c")n1; fi
done
[ -n "$dev" ] || { echo "no NVMe disk with serial m-series-tank"; exit 1; }
zpool create -f tank "$dev"
zfs create -o compression=lz4 tank/data
dd if=/dev/urandom of=/tank/data/blob bs=1M count=32 2>/dev/null
before=$(sha256sum /tank/data/blob | cut -d' ' -f1)
zpool scrub -w tank
zpool export tank
zpool import -d /dev tank
after=$(sha256sum /tank/data/blob | cut -d' ' -f1)
[ "$before" = "$after" ] || { echo "data changed across export/import"; exit 1; }
zpool status -x tank
echo "M-SERIES ZFS OK pool=$(zpool list -H -o name,size,health tank | tr '\t' ',') dataset=$(zfs list -H -o name,used,compression tank/data | tr '\t' ',') sha256=$after"

#!/bin/bash
# Test-only: runs in the guest after multi-user.target (fwcfg-test-collect.service). Writes what
# the host-side tests check into /run/fwcfg-test, tars it onto the results disk (virtio serial
# "fwcfg-results", no file system), prints a marker on the console and powers the guest off.
# A test can run a shell snippet first: fwcfg_test.pre=<base64> on the kernel command line.
set -u
out=/run/fwcfg-test
mkdir -p "$out"
cd "$out" || exit 1
exec 2>>"$out/collect.stderr"
# the boot's job queue must be empty first: blame and time refuse an unfinished boot
timeout 120 systemctl is-system-running --wait > system-state-wait.txt
cat /proc/uptime > uptime-start.txt

# run NAME CMD...: stdout to NAME, exit status to NAME.rc; nothing may hang the collector
run() {
  local name=$1
  shift
  timeout 60 "$@" > "$name" 2>> "$name.err"
  echo $? > "$name.rc"
}

cat /proc/cmdline > cmdline.txt
cat /proc/sys/kernel/random/boot_id > boot-id.txt
for word in $(cat /proc/cmdline); do
  case $word in
    fwcfg_test.pre=*)
      echo "${word#fwcfg_test.pre=}" | base64 -d > pre.sh
      # the snippet's own output is kept; it runs before anything is collected
      timeout 120 bash pre.sh > pre.out 2> pre.err
      echo $? > pre.rc
      ;;
  esac
done

run hostname.txt hostname
run ip-addr.json ip -j addr
run ip-link.json ip -j link
run ip-route.json ip -j route
run ip-route6.json ip -j -6 route
run ip-br-addr.txt ip -br addr
run failed.txt systemctl --failed --plain --no-legend
run system-state.txt systemctl is-system-running
props=Id,ActiveState,SubState,Result,ExecMainStatus,ExecMainStartTimestampMonotonic
props=$props,ExecMainExitTimestampMonotonic,ActiveEnterTimestampMonotonic
props=$props,InactiveExitTimestampMonotonic,TimeoutStartUSec,LoadState,UnitFileState
for unit in fwcfg-agent.service network-pre.target network.target systemd-networkd.service \
  networking.service NetworkManager.service multi-user.target sysinit.target basic.target \
  systemd-udev-trigger.service systemd-hostnamed.service modprobe@virtio_net.service; do
  run "show-$unit.txt" systemctl show -p "$props" "$unit"
done
run analyze-time.txt systemd-analyze time
run blame.txt systemd-analyze blame --no-pager
run critical-chain.txt systemd-analyze critical-chain --no-pager fwcfg-agent.service
run agent-journal.json journalctl -b -u fwcfg-agent.service -o json --no-pager
run agent-journal.txt journalctl -b -u fwcfg-agent.service -o short-monotonic --no-pager
run journal.txt journalctl -b -o short-monotonic --no-pager
# (each agent command costs seconds of Python start-up under TCG: only what the tests read)
if command -v fwcfg-agent > /dev/null; then
  run agent-runs.json fwcfg-agent journal --json
  run agent-runs.txt fwcfg-agent journal
fi
run networkctl.txt networkctl --no-pager status --all
run lsmod.txt lsmod
grep -i fw_cfg /proc/ioports > ioports.txt
# fw_cfg as the guest's kernel shows it (stand-in for the agent, and a check of the harness)
if [[ -d /sys/firmware/qemu_fw_cfg/by_key ]]; then
  mkdir -p fwcfg
  for d in /sys/firmware/qemu_fw_cfg/by_key/*; do
    name=$(cat "$d/name")
    printf '%s\t%s\t%s\n' "$(basename "$d")" "$(cat "$d/size")" "$name" >> fwcfg/index.tsv
    case $name in opt/*) cat "$d/raw" > "fwcfg/$(basename "$d").raw" ;; esac
  done
fi
# every file and link under /etc and the agent's state, with its sha256 or target
find /etc /var/lib/fwcfg-agent -xdev -type f -print0 2>/dev/null | sort -z \
  | xargs -0 sha256sum > etc-files.sha256
find /etc /var/lib/fwcfg-agent -xdev -type l -printf '%p\t%l\n' 2>/dev/null | sort > etc-links.tsv
# copies of what the agent writes and keeps
tar -cf files.tar --ignore-failed-read /etc/hostname /etc/hosts /etc/systemd/network \
  /etc/netplan /etc/network /etc/NetworkManager/system-connections /etc/fwcfg-agent \
  /var/lib/fwcfg-agent /run/systemd/network 2>/dev/null
cat /proc/uptime > uptime-end.txt

results=/dev/disk/by-id/virtio-fwcfg-results
tar -cf "$results" -C "$out" . && sync
echo "FWCFG-TEST-COLLECTED status=$?"
systemctl --no-block poweroff

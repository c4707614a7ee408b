#!/usr/bin/env bash
# sudo npm run setup — prepare this machine for the kernel labs. Idempotent:
# a second run finds everything in place, changes nothing and takes seconds.
#   1. system packages (apt on Debian/Ubuntu, dnf on Fedora) from scripts/packages/
#   2. npm ci (only when package-lock.json changed since the last install)
#   3. tracefs (and debugfs) mounted when absent
#   4. kernel headers for BCC under /lib/modules/$(uname -r)/{build,source}
#   5. with --guest-kernels: Debian's 5.10 and 6.12 kernels (with their headers) into .cache/guest-kernels,
#      for npm run test:guest -- --kernel <series>, and QEMU 10.0 from bookworm-backports into .cache/guest-qemu,
#      for --qemu 10.0 (a private apt configuration: the host's apt state is untouched)
set -euo pipefail
guest_kernels=0
for arg in "$@"; do
	case $arg in
		--guest-kernels) guest_kernels=1 ;;
		--) ;;
		*) printf '[setup] unknown option %s (known: --guest-kernels)\n' "$arg" >&2; exit 2 ;;
	esac
done
cd "$(dirname "$0")/.."

say()  { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
warn() { printf '\033[33m[setup] %s\033[0m\n' "$*" >&2; }
die()  { printf '\033[31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "setup installs system packages and mounts tracefs, so it must run as root: sudo npm run setup"

release=$(uname -r)
export DEBIAN_FRONTEND=noninteractive

# --- 1. system packages ----------------------------------------------------------
if command -v apt-get >/dev/null 2>&1; then family=apt; elif command -v dnf >/dev/null 2>&1; then family=dnf; else
	die "neither apt-get nor dnf found: install the packages in scripts/packages/apt.txt by hand"
fi

installed() {
	if [ "$family" = apt ]; then dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
	else rpm -q "$1" >/dev/null 2>&1; fi
}
available() {
	if [ "$family" = apt ]; then [ -n "$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)')" ]
	else dnf -q info "$1" >/dev/null 2>&1; fi
}

wanted=() optional=()
while read -r line; do
	line=${line%%#*}
	[ -n "${line// }" ] || continue
	set -- $line
	spec=$1 opt=${2:-}
	pick=""
	IFS='|' read -ra alts <<<"$spec"
	for a in "${alts[@]}"; do installed "$a" && { pick=done; break; }; done
	[ "$pick" = done ] && continue
	if [ "$opt" = "?" ]; then optional+=("$spec"); else wanted+=("$spec"); fi
done < "scripts/packages/$family.txt"

if [ ${#wanted[@]} -gt 0 ] || [ ${#optional[@]} -gt 0 ]; then
	say "installing system packages with $family…"
	if [ "$family" = apt ]; then apt-get update -qq; fi
	resolve() { # first alternative the archive has
		local spec=$1 a; IFS='|' read -ra alts <<<"$spec"
		for a in "${alts[@]}"; do available "$a" && { echo "$a"; return 0; }; done
		return 1
	}
	list=() missing=()
	for s in "${wanted[@]}"; do if p=$(resolve "$s"); then list+=("$p"); else missing+=("$s"); fi; done
	for s in "${optional[@]}"; do if p=$(resolve "$s"); then list+=("$p"); else warn "optional package $s is not in this archive; the labs that want it will say so"; fi; done
	[ ${#missing[@]} -eq 0 ] || die "not in the $family archive: ${missing[*]} (check your sources list)"
	say "  ${list[*]}"
	if [ "$family" = apt ]; then
		apt-get install -y -qq --no-install-recommends "${list[@]}" >/tmp/kernel-labs-setup-apt.log 2>&1 \
			|| { tail -30 /tmp/kernel-labs-setup-apt.log >&2; die "apt-get install failed (full log: /tmp/kernel-labs-setup-apt.log)"; }
	else
		dnf install -y -q "${list[@]}"
	fi
else
	say "system packages: all present"
fi

# --- 2. node modules -------------------------------------------------------------
stamp=node_modules/.kernel-labs-lock
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ] && [ -x node_modules/.bin/vitest ]; then
	say "node modules: up to date"
else
	say "npm ci…"
	npm ci --no-audit --no-fund --loglevel=error
	echo "$lock_sum" > "$stamp"
fi

# --- 3. tracefs / debugfs --------------------------------------------------------
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs nodev /sys/kernel/tracing && say "mounted tracefs at /sys/kernel/tracing" \
		|| warn "could not mount tracefs: the eBPF labs will skip (kernel without CONFIG_TRACING?)"
else
	say "tracefs: mounted"
fi
if [ -d /sys/kernel/debug ] && ! mountpoint -q /sys/kernel/debug; then
	mount -t debugfs nodev /sys/kernel/debug && say "mounted debugfs at /sys/kernel/debug" || warn "could not mount debugfs"
fi

# --- 4. kernel headers for BCC ---------------------------------------------------
mods=/lib/modules/$release
if [ -e "$mods/build/Makefile" ] || [ -d "$mods/build/include" ]; then
	say "kernel headers: $mods/build"
else
	if [ "$family" = apt ] && available "linux-headers-$release"; then
		apt-get install -y -qq "linux-headers-$release" >/dev/null && say "installed linux-headers-$release"
	elif [ "$family" = dnf ] && available "kernel-devel-$release"; then
		dnf install -y -q "kernel-devel-$release"
	fi
	if [ ! -e "$mods/build/Makefile" ]; then
		# No package for this exact kernel (a custom or cloud kernel): use the distribution's
		# default headers. BCC's tracepoint programs compile against them; kprobes on changed
		# structures may not.
		if [ "$family" = apt ]; then
			for p in linux-headers-amd64 linux-headers-generic; do
				available "$p" && { installed "$p" || apt-get install -y -qq "$p" >/dev/null; break; }
			done
		fi
		arch_dir=$(ls -d /usr/src/linux-headers-*-amd64 /usr/src/linux-headers-*-generic 2>/dev/null | sort -V | tail -1 || true)
		[ -n "$arch_dir" ] || die "no kernel headers for $release and no distribution headers to fall back on: install linux-headers for your kernel"
		common_dir=${arch_dir%-amd64}-common
		[ -d "$common_dir" ] || common_dir=$arch_dir
		mkdir -p "$mods"
		ln -sfn "$arch_dir" "$mods/build"
		ln -sfn "$common_dir" "$mods/source"
		say "no linux-headers-$release package exists: linked $mods/build -> $arch_dir"
		say "                                           and $mods/source -> $common_dir (BCC uses these)"
	fi
fi

# --- 5. guest kernels of other series and a newer QEMU (on request) ---------------
if [ "$guest_kernels" = 1 ]; then
	npx tsx scripts/guest-kernels.ts 5.10 6.12 qemu || die "could not fetch the guest kernels or QEMU (above)"
fi

say "done. Next: sudo npm test   (or: npm run doctor to see what this host can do)"

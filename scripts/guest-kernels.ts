/**
 * npm run setup -- --guest-kernels (or: npx tsx scripts/guest-kernels.ts [5.10] [6.12] [qemu]) — fetch Debian's
 * kernels of other series, with their headers, into .cache/guest-kernels for
 * `npm run test:guest -- --kernel <series>`, and QEMU 10.0 from bookworm-backports into .cache/guest-qemu for
 * `--qemu 10.0`, without touching the host's apt sources, lists or packages (helpers/course/guest-kernels.ts,
 * helpers/course/guest-qemu.ts). A progress line per step.
 */
import { fetchGuestKernel, KERNEL_SERIES } from '../helpers/course/guest-kernels.js';
import { fetchGuestQemu, QEMU_SERIES } from '../helpers/course/guest-qemu.js';

const asked = process.argv.slice(2).filter((a) => a !== '--');
const all = !asked.length;
let status = 0;
for (const s of all ? Object.keys(KERNEL_SERIES) : asked.filter((a) => a !== 'qemu')) {
  try {
    const k = await fetchGuestKernel(s, (l) => console.log(`[setup] ${l}`));
    console.log(`[setup] guest kernel ${s}: ${k.release} (${k.pkg} ${k.version}) in ${k.path.replace(/\/root\/boot\/.*/, '')}`);
  } catch (e) {
    console.error(`[setup] guest kernel ${s}: ${(e as Error).message}`);
    status = 1;
  }
}
if (all || asked.includes('qemu')) {
  for (const s of Object.keys(QEMU_SERIES)) {
    try {
      const q = await fetchGuestQemu(s, (l) => console.log(`[setup] ${l}`));
      console.log(`[setup] QEMU ${s}: ${q.version} in ${q.binary}`);
    } catch (e) {
      console.error(`[setup] QEMU ${s}: ${(e as Error).message}`);
      status = 1;
    }
  }
}
process.exitCode = status;

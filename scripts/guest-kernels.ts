/**
 * npm run setup -- --guest-kernels (or: npx tsx scripts/guest-kernels.ts [5.10] [6.12]) — fetch Debian's
 * kernels of other series into .cache/guest-kernels for `npm run test:guest -- --kernel <series>`, without
 * touching the host's apt sources, lists or packages (helpers/course/guest-kernels.ts). A progress line per step.
 */
import { fetchGuestKernel, KERNEL_SERIES } from '../helpers/course/guest-kernels.js';

const series = process.argv.slice(2).filter((a) => a !== '--');
let status = 0;
for (const s of series.length ? series : Object.keys(KERNEL_SERIES)) {
  try {
    const k = await fetchGuestKernel(s, (l) => console.log(`[setup] ${l}`));
    console.log(`[setup] guest kernel ${s}: ${k.release} (${k.pkg} ${k.version}) in ${k.path.replace(/\/root\/boot\/.*/, '')}`);
  } catch (e) {
    console.error(`[setup] guest kernel ${s}: ${(e as Error).message}`);
    status = 1;
  }
}
process.exitCode = status;

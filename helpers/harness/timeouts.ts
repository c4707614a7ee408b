/**
 * LABS_TIMEOUT_SCALE=<k> (k > 1) stretches every bound of the harness's
 * process running (run, startBackground, waitFor, waitUntil): the guest pass
 * (npm run test:guest) sets it, since programs under QEMU's TCG run several
 * times slower. Bounds stay bounds; only their length changes.
 */
export function scaledTimeout(ms: number): number {
  const k = Number(process.env.LABS_TIMEOUT_SCALE);
  return Number.isFinite(k) && k > 1 ? Math.round(ms * k) : ms;
}

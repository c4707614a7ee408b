/**
 * Results of the guest pass (npm run test:guest) beside the host's: every lab
 * of the host's reports/labs.json keeps its host result and gains `guest`
 * (the guest run's result for it, with the guest kernel, or the reason the
 * guest skipped it); `kernel` and `ranOn` say where each result came from.
 * Pure, so the merge is unit-tested on fixtures.
 */
import { buildReport, type LabReport, type LabsReport } from './report-model.js';
import type { LabInfo } from './labs.js';

export interface GuestSkip { readonly id: string; readonly reason: string }

/** The host report (or an empty one) with each lab's guest result attached. */
export function attachGuest(host: LabsReport | undefined, guest: LabsReport, skipped: readonly GuestSkip[], labs: readonly LabInfo[], now = new Date()): LabsReport {
  const base = host ?? buildReport([], { labs, now, host: { kernel: 'none', hostname: 'none', labSrc: guest.host.labSrc, strict: guest.host.strict, ...(guest.host.defaultSources !== undefined ? { defaultSources: guest.host.defaultSources } : {}) } });
  const guestLabs = new Map(guest.labs.map((l) => [l.id, l]));
  const skips = new Map(skipped.map((s) => [s.id, s.reason]));
  const hostKernel = host?.host.kernel;
  const out = base.labs.map((lab): LabReport => {
    const g = guestLabs.get(lab.id);
    const onHost: LabReport = { ...lab, ...(lab.result !== 'not run' && !lab.kernel && hostKernel ? { kernel: hostKernel, ranOn: 'host' as const } : {}) };
    const reason = skips.get(lab.id);
    if (g && g.result !== 'not run' && !g.fromEarlierRun) {
      const { guest: _nested, ...plain } = g;
      return { ...onHost, guest: { ...plain, kernel: guest.host.kernel, ranOn: 'guest' } };
    }
    if (reason) {
      return {
        ...onHost,
        guest: {
          ...lab, result: 'skipped', adapted: false, kernel: guest.host.kernel, ranOn: 'guest', ranAt: guest.generatedAt,
          fromEarlierRun: false, counts: { passed: 0, failed: 0, skipped: 0 }, adaptations: [], skipReasons: [`not run in the guest: ${reason}`],
          errors: [], tests: [], metrics: [], guest: undefined,
        },
      };
    }
    return onHost; // not part of this guest pass: keep the earlier guest result, if any
  });
  return {
    ...base,
    generatedAt: now.toISOString(),
    runResult: guest.runResult === 'passed' ? base.runResult : guest.runResult,
    labs: out,
    unhandledErrors: [...base.unhandledErrors, ...guest.unhandledErrors.map((e) => `[guest ${guest.host.kernel}] ${e}`)],
  };
}

/** The guest's JUnit with each suite and case named `[<tag>] …`, so it sits beside the host's without clashing. */
export function tagJunit(xml: string, tag: string): string {
  const esc = xmlText(tag);
  return xml.replace(/(<testsuite\b[^>]*?\bname=")/g, `$1[${esc}] `).replace(/(<testcase\b[^>]*?\bclassname=")/g, `$1[${esc}] `);
}

/** Text for an XML attribute or element: escaped, without the control characters XML 1.0 forbids (console escapes). */
function xmlText(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

/**
 * The JUnit of a pass whose guest never reported an exit status (hung, locked up, killed): one failed test case
 * named for the pass, with the reason and the console's last lines, so that a CI summary counts it as a failure
 * (vitest leaves an empty junit.xml when it never gets to its end).
 */
export function failedPassJunit(tag: string, why: string, consoleTail: string): string {
  const name = `[${xmlText(tag)}] guest pass`;
  return `<?xml version="1.0" encoding="UTF-8" ?>
<testsuites name="guest pass" tests="1" failures="1" errors="0">
  <testsuite name="${name}" tests="1" failures="1" errors="0" skipped="0">
    <testcase classname="${name}" name="the guest reports the exit status of its lab run">
      <failure message="${xmlText(why)}">${xmlText(consoleTail)}</failure>
    </testcase>
  </testsuite>
</testsuites>
`;
}

/** Several JUnit files (one per guest boot) as one: their <testsuite> elements under one <testsuites> with the totals. */
export function mergeJunit(xmls: readonly string[]): string {
  const suites = xmls.flatMap((x) => [...x.matchAll(/<testsuite\b[\s\S]*?<\/testsuite>|<testsuite\b[^>]*\/>/g)].map((m) => m[0]));
  const total = (attr: string) => suites.reduce((a, s) => a + Number(s.match(new RegExp(`^<testsuite\\b[^>]*\\b${attr}="(\\d+)"`))?.[1] ?? 0), 0);
  return `<?xml version="1.0" encoding="UTF-8" ?>
<testsuites name="guest pass" tests="${total('tests')}" failures="${total('failures')}" errors="${total('errors')}">
${suites.map((s) => `  ${s}`).join('\n')}
</testsuites>
`;
}

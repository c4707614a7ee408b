/**
 * The guest pass's results beside the host's: attachGuest keeps each lab's
 * host result and adds the guest's (with its kernel), or the reason the guest
 * skipped it; a later host run and a merge of CI reports keep the guest result.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachGuest, failedPassJunit, tagJunit } from '../../helpers/course/guest-report.js';
import { buildReport, mergeReports } from '../../helpers/course/report-model.js';
import { renderHtml } from '../../helpers/course/report-html.js';
import { LABS, MODULES } from '../fixtures/lab-reporter/fake-run.js';

const T1 = new Date('2026-01-02T03:04:05Z');
const T2 = new Date('2026-01-02T04:00:00Z');
const host = buildReport(MODULES, { labs: LABS, now: T1, host: { kernel: '6.18.44-fc', hostname: 'h', labSrc: null, strict: true } });
// The guest ran the same modules (as if), on its own kernel.
const guest = buildReport(MODULES.filter((m) => !m.moduleId.includes('kvm')), { labs: LABS, now: T2, host: { kernel: '6.1.0-56-amd64', hostname: 'kl-guest', labSrc: null, strict: true } });
const skipped = [{ id: 'cloud/03-kvm', reason: 'needs /dev/kvm, which a TCG guest does not have' }];

describe('guest report: host and guest results side by side', () => {
  const merged = attachGuest(host, guest, skipped, LABS, T2);
  const lab = (id: string) => merged.labs.find((l) => l.id === id)!;

  it('keeps the host result with the host kernel and adds the guest result with the guest kernel', () => {
    const env = lab('00-environment');
    expect(env.result).toBe(host.labs.find((l) => l.id === '00-environment')!.result);
    expect(env).toMatchObject({ kernel: '6.18.44-fc', ranOn: 'host' });
    expect(env.guest).toMatchObject({ kernel: '6.1.0-56-amd64', ranOn: 'guest', result: guest.labs.find((l) => l.id === '00-environment')!.result });
    expect(env.guest!.guest).toBeUndefined();
  });

  it('records the labs the guest skipped with the reason, and leaves labs neither ran alone', () => {
    expect(lab('cloud/03-kvm').guest).toMatchObject({ result: 'skipped', skipReasons: ['not run in the guest: needs /dev/kvm, which a TCG guest does not have'] });
    expect(lab('kernel/K9-never-run').guest).toBeUndefined();
    expect(lab('kernel/K9-never-run').result).toBe('not run');
  });

  it('fails the run when the guest failed', () => {
    expect(guest.runResult).toBe('failed');
    expect(merged.runResult).toBe('failed');
  });

  it('works without a host report (a fresh checkout): host columns are "not run"', () => {
    const only = attachGuest(undefined, guest, skipped, LABS, T2);
    expect(only.labs.find((l) => l.id === '00-environment')).toMatchObject({ result: 'not run', guest: { ranOn: 'guest' } });
  });

  it('a later host run keeps the guest result beside its own', () => {
    const again = buildReport(MODULES, { labs: LABS, previous: merged, now: new Date('2026-01-03T00:00:00Z') });
    expect(again.labs.find((l) => l.id === '00-environment')!.guest).toMatchObject({ kernel: '6.1.0-56-amd64' });
  });

  it('merging CI reports keeps the host shard\'s result and the guest job\'s result', () => {
    const guestJob = attachGuest(undefined, guest, skipped, LABS, T2);
    const m = mergeReports([host, guestJob], T2);
    const env = m.labs.find((l) => l.id === '00-environment')!;
    expect(env.ranAt).toBe(T1.toISOString());
    expect(env.guest).toMatchObject({ kernel: '6.1.0-56-amd64' });
  });
});

describe('guest report: HTML', () => {
  it('shows, per lab, the host kernel and the guest result with the guest kernel', () => {
    const html = renderHtml(attachGuest(host, guest, skipped, LABS, T2));
    expect(html).toContain('on this host, kernel <code>6.18.44-fc</code>');
    expect(html).toMatch(/<div class="box guest" data-guest-result="\w+"><b>In the guest pass<\/b> \(kernel <code>6\.1\.0-56-amd64<\/code>/);
    expect(html).toContain('not run in the guest: needs /dev/kvm');
  });
});

describe('guest report: JUnit', () => {
  it('names every suite and case class after the guest kernel', () => {
    const xml = '<testsuites><testsuite name="labs/a.spec.ts" tests="1"><testcase classname="labs/a.spec.ts" name="x"/></testsuite></testsuites>';
    expect(tagJunit(xml, 'guest 6.1.0-56-amd64')).toBe('<testsuites><testsuite name="[guest 6.1.0-56-amd64] labs/a.spec.ts" tests="1"><testcase classname="[guest 6.1.0-56-amd64] labs/a.spec.ts" name="x"/></testsuite></testsuites>');
  });
});

describe('a guest that never reports its exit status', () => {
  it('becomes one failed JUnit case that the CI summary counts, with the console\'s escapes removed', () => {
    const xml = failedPassJunit('guest 6.1.0-56-amd64', 'the guest never reported an exit status (the guest kernel locked up: BUG: soft lockup - CPU#1 stuck for 26s! [node:156])', '\x1b[?7l[2J<SeaBIOS> & "x"\nKernel panic - not syncing: softlockup: hung tasks');
    expect(xml).not.toMatch(/\x1b/);
    expect(xml).toContain('[guest 6.1.0-56-amd64] guest pass');
    const dir = mkdtempSync(join(tmpdir(), 'junit-'));
    try {
      writeFileSync(join(dir, 'j.xml'), xml);
      expect(execFileSync('node', [join(import.meta.dirname, '../../scripts/junit-summary.mjs'), join(dir, 'j.xml')], { encoding: 'utf8' }).trim()).toBe('0 passed, 1 failed, 0 skipped');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

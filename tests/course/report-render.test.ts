/**
 * reports/labs.html as a browser shows it: rendered offline in headless
 * Chromium (Debian's `chromium` package) from the recorded fixture run, with
 * a probe script added to the copy under test that measures the page after
 * layout (sections, chart bars, resources fetched) and prints it into the DOM
 * that --dump-dom returns. Skips, with the fix, when Chromium is absent.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport } from '../../helpers/course/report-model.js';
import { renderHtml, useLogScale } from '../../helpers/course/report-html.js';
import { KPROBE_ADAPTATION, KVM_SKIP, LABS, MODULES } from '../fixtures/lab-reporter/fake-run.js';

const CHROMIUM_FIX = `chromium not found${process.env.CHROMIUM ? ` (CHROMIUM=${process.env.CHROMIUM} is not executable)` : ''}. Fix: sudo apt install chromium   (or set CHROMIUM=/path/to/chrome)`;
const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function findChromium(): string | undefined {
  if (process.env.CHROMIUM) {
    try { accessSync(process.env.CHROMIUM, constants.X_OK); return process.env.CHROMIUM; } catch { return undefined; }
  }
  for (const name of CANDIDATES) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

interface Rendered { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** Run chromium in its own process group; kill the whole group on timeout. */
function chromium(bin: string, args: readonly string[], timeoutMs = 60_000): Promise<Rendered> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: null, stdout, stderr: `${stderr}${e.message}` }); });
    child.on('close', (code) => {
      clearTimeout(timer);
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* the group is gone, as it should be */ }
      resolve({ code, stdout, stderr });
    });
  });
}

/** Measures the laid-out page and writes the result into <pre id="probe-out">. */
const PROBE = `<script>
(() => {
  const box = (el) => el.getBoundingClientRect();
  const out = {
    title: document.title,
    summary: document.getElementById('summary').innerText,
    sections: [...document.querySelectorAll('section.lab')].map((s) => ({ lab: s.dataset.lab, result: s.dataset.result, height: box(s).height, text: s.innerText })),
    charts: [...document.querySelectorAll('svg.chart')].map((svg) => ({
      label: svg.getAttribute('aria-label'), width: box(svg).width, height: box(svg).height,
      bars: [...svg.querySelectorAll('rect')].map((r) => ({ value: Number(r.dataset.value), width: box(r).width })),
    })),
    failureOpen: [...document.querySelectorAll('details.failure')].map((d) => d.open),
    resources: performance.getEntriesByType('resource').map((e) => e.name),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
  const pre = document.createElement('pre');
  pre.id = 'probe-out';
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
})();
</script>`;

interface Probe {
  title: string;
  summary: string;
  sections: { lab: string; result: string; height: number; text: string }[];
  charts: { label: string; width: number; height: number; bars: { value: number; width: number }[] }[];
  failureOpen: boolean[];
  resources: string[];
  scrollWidth: number;
  innerWidth: number;
}

const decode = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&nbsp;/g, '\u00a0').replace(/&amp;/g, '&');

const bin = findChromium();
const dir = mkdtempSync(join(tmpdir(), 'kl-render-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A test that needs Chromium: skipped with the fix when it is absent. */
function itRendered(name: string, fn: () => void): void {
  it(name, (ctx) => {
    if (!bin) ctx.skip(CHROMIUM_FIX);
    fn();
  });
}

describe('reports/labs.html rendered in headless Chromium', () => {
  let probe: Probe;
  let dom = '';

  beforeAll(async () => {
    if (!bin) return;
    const html = renderHtml(buildReport(MODULES, { labs: LABS, runResult: 'failed', now: new Date('2026-01-02T03:04:05Z'), host: { hostname: 'testhost', kernel: '6.1.0-test', labSrc: '/home/student/my-labs', strict: false } }));
    const page = join(dir, 'labs.html');
    writeFileSync(page, html.replace('</body>', `${PROBE}</body>`));
    const r = await chromium(bin!, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--no-default-browser-check', `--user-data-dir=${join(dir, 'profile')}`,
      '--window-size=1280,2400', '--dump-dom', pathToFileURL(page).href,
    ]);
    dom = r.stdout;
    const m = dom.match(/<pre id="probe-out">([\s\S]*?)<\/pre>/);
    if (!m) {
      const snap = realpathSync(bin!).includes('/snap/') ? ` (${bin} is a snap: it may not read ${dir}; install a non-snap Chromium or set CHROMIUM)` : '';
      throw new Error(`Chromium rendered no probe output${snap}: exit ${r.code}\nstderr: ${r.stderr.slice(-2000)}\nstdout: ${dom.slice(0, 2000)}`);
    }
    probe = JSON.parse(decode(m[1]!)) as Probe;
  }, 90_000);

  itRendered('loads without fetching anything (no scripts, fonts or images from anywhere)', () => {
    expect(probe.resources).toEqual([]);
  });

  itRendered('shows every lab as a visible section with its result', () => {
    expect(probe.sections.map((s) => [s.lab, s.result])).toEqual(LABS.map((l) => [l.id, ({
      '00-environment': 'failed', 'ebpf/01-exec-tracer': 'passed', 'io_uring/01-fio': 'passed', 'cloud/03-kvm': 'skipped', 'kernel/K9-never-run': 'not run',
    } as Record<string, string>)[l.id]]));
    for (const s of probe.sections) expect(s.height, `section ${s.lab} has no height`).toBeGreaterThan(40);
    expect(probe.title).toBe('Kernel labs — failed (2/5 passed)');
    expect(probe.summary).toMatch(/5 labs.*passed 2.*failed 1/s);
  });

  itRendered('draws the bar charts at a readable size, each bar as long as its figure relative to the largest', () => {
    expect(probe.charts.map((c) => c.label)).toEqual(['exec events (events)', 'fio randread 4k (IOPS)', 'fio randread 4k (µs)', 'syscalls per 64 MiB copy (syscalls)']);
    for (const c of probe.charts) {
      expect(c.width, `${c.label} is too small`).toBeGreaterThan(400);
      const max = Math.max(...c.bars.map((b) => b.value));
      const min = Math.min(...c.bars.map((b) => b.value));
      const longest = Math.max(...c.bars.map((b) => b.width));
      // Figures two orders of magnitude apart are drawn on a log scale (the smallest a tenth of the longest).
      const log = useLogScale(c.bars.map((b) => b.value));
      const expected = (v: number) => (log ? Math.log10((v / min) * 10) / Math.log10((max / min) * 10) : v / max);
      for (const b of c.bars) {
        // Bars under 1 px are drawn 1 px wide so that they stay visible.
        expect(Math.abs(b.width / longest - expected(b.value)), `${c.label}: bar for ${b.value} is ${b.width}px of ${longest}px${log ? ' (log scale)' : ''}`).toBeLessThan(0.01 + 1 / longest);
      }
    }
    const syscalls = probe.charts.find((c) => c.label.startsWith('syscalls'))!;
    expect(syscalls.bars.map((b) => b.value)).toEqual([2048, 1030, 3]);
  });

  itRendered('shows the failure with its evidence and where to look, opened', () => {
    const env = probe.sections.find((s) => s.lab === '00-environment')!;
    expect(env.text).toContain('release=? pid=0 ppid=0 raw_pid=-1');
    expect(env.text).toContain('look at labs/00-environment/environment.spec.ts:53:51');
    expect(probe.failureOpen).toEqual([true]);
  });

  itRendered('says why a lab was skipped (with the fix) and how another was adapted', () => {
    expect(probe.sections.find((s) => s.lab === 'cloud/03-kvm')!.text).toContain(KVM_SKIP);
    expect(probe.sections.find((s) => s.lab === 'ebpf/01-exec-tracer')!.text).toContain(KPROBE_ADAPTATION);
  });

  itRendered('fits the window: no horizontal scrolling at 1280 px', () => {
    expect(probe.scrollWidth).toBeLessThanOrEqual(probe.innerWidth);
  });
});

describe('bar charts whose figures span orders of magnitude (issue 28)', () => {
  it('are drawn on a log scale, said in the title, so the small bars stay visible', async () => {
    const { barChart, useLogScale } = await import('../../helpers/course/report-html.js');
    expect(useLogScale([1, 50])).toBe(false);
    expect(useLogScale([0.4, 1200])).toBe(true);
    expect(useLogScale([0, 1200]), 'a zero has no place on a log scale').toBe(false);
    const widths = (svg: string) => [...svg.matchAll(/<rect [^>]*width="([\d.]+)"/g)].map((m) => Number(m[1]));
    const log = barChart('CPU', '%', [{ label: 'epoll', value: 0.5 }, { label: 'poll', value: 95 }]);
    expect(log).toContain('(log scale)');
    const [small, large] = widths(log);
    expect(small! / large!).toBeGreaterThan(0.2);
    const linear = barChart('CPU', '%', [{ label: 'a', value: 40 }, { label: 'b', value: 80 }]);
    expect(linear).not.toContain('log scale');
    expect(widths(linear)[0]! / widths(linear)[1]!).toBeCloseTo(0.5, 2);
  });
});

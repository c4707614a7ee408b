/**
 * scripts/labs.ts: the status `labs list` gives each lab on a host, how a
 * name picks labs, the watch loop of `lab --watch`, and the real command's
 * output on this host.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CAPABILITY_IDS, type Capability, type CapabilityId } from '../../helpers/harness/capabilities.js';
import { courseOrder } from '../../helpers/course/labs.js';
import { listLabs, type LabInfo } from '../../helpers/course/labs.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { formatList, labRows, labStatus, matchLabs, watchAndRun, watchTargets, type LabRow } from '../../scripts/labs.js';
import { LABS } from '../fixtures/lab-reporter/fake-run.js';

type Caps = Record<CapabilityId, Capability>;

function caps(missing: Partial<Record<CapabilityId, { detail: string; fix: string }>> = {}): Caps {
  return Object.fromEntries(CAPABILITY_IDS.map((id) => {
    const m = missing[id];
    return [id, { id, title: `title of ${id}`, ok: !m, detail: m?.detail ?? 'found', fix: m?.fix ?? '', adaptable: id === 'kprobes' }];
  })) as Caps;
}

const lab = (id: string) => LABS.find((l) => l.id === id)!;
const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'kl-labs-cli-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('labStatus: ready, adapted or skipped, from lab.json and the probe', () => {
  it('is ready when every required and adaptable capability is present', () => {
    expect(labStatus(lab('ebpf/01-exec-tracer'), caps())).toEqual({ status: 'ready', reasons: [] });
  });

  it('is adapted when a capability the lab works around is missing, and says which', () => {
    const s = labStatus(lab('ebpf/01-exec-tracer'), caps({ kprobes: { detail: 'kernel built without CONFIG_KPROBES', fix: 'a kernel with CONFIG_KPROBES=y' } }));
    expect(s).toEqual({ status: 'adapted', reasons: ['no kprobes here (kernel built without CONFIG_KPROBES): the lab works around it'] });
  });

  it('is skipped when a required capability is missing, with what was found and the fix', () => {
    const s = labStatus(lab('cloud/03-kvm'), caps({ kvm: { detail: '/dev/kvm is absent', fix: 'enable virtualization' } }));
    expect(s).toEqual({ status: 'skipped', reasons: ['missing kvm (title of kvm): /dev/kvm is absent. Fix: enable virtualization'] });
  });

  it('a missing requirement outranks an adaptation', () => {
    const s = labStatus(lab('ebpf/01-exec-tracer'), caps({ kprobes: { detail: 'no', fix: 'x' }, bpftrace: { detail: 'bpftrace not found', fix: 'sudo apt install -y bpftrace' } }));
    expect(s.status).toBe('skipped');
    expect(s.reasons).toEqual(['missing bpftrace (title of bpftrace): bpftrace not found. Fix: sudo apt install -y bpftrace']);
  });

  it('counts root as present when listing without sudo (the labs themselves run with it)', () => {
    const noRoot = caps({ root: { detail: 'uid 1000', fix: 'run it with sudo' } });
    expect(labStatus(lab('00-environment'), noRoot).status).toBe('skipped');
    expect(labStatus(lab('00-environment'), noRoot, { assumeSudo: true }).status).toBe('ready');
  });
});

describe('formatList', () => {
  const rows: LabRow[] = labRows(LABS, caps({ kvm: { detail: '/dev/kvm is absent', fix: 'enable virtualization' }, kprobes: { detail: 'no kprobe_events', fix: '' } }));

  it('groups labs by area with both titles, the status and the reasons beneath', () => {
    const text = formatList(rows);
    const lines = text.split('\n');
    expect(lines).toContain('ebpf');
    expect(text).toMatch(/◐ adapted\s+ebpf\/01-exec-tracer\s+Tracing process execution · 追踪进程执行/);
    expect(text).toMatch(/⊘ skipped\s+cloud\/03-kvm\s+The smallest KVM guest · 最小 KVM 虚拟机\n\s+missing kvm \(title of kvm\): \/dev\/kvm is absent\. Fix: enable virtualization/);
    expect(text).toMatch(/✔ ready\s+io_uring\/01-fio/);
    expect(text).toContain('5 labs: 3 ready, 1 adapted, 1 skipped on this host.');
    expect(text).toContain('sudo npm run lab -- <id');
    expect(text).not.toMatch(/\u001b\[/);
  });

  it('shows the last result from the report when there is one', () => {
    const withLast = labRows(LABS, caps(), {}, { labs: [{ id: 'io_uring/01-fio', result: 'failed' }, { id: 'cloud/03-kvm', result: 'not run' }] } as never);
    expect(withLast.find((r) => r.id === 'io_uring/01-fio')!.lastResult).toBe('failed');
    expect(withLast.find((r) => r.id === 'cloud/03-kvm')!.lastResult).toBeUndefined();
    expect(formatList(withLast)).toMatch(/io_uring\/01-fio .*\(last run: failed\)/);
  });
});

describe('matchLabs: one short name picks the lab', () => {
  it('takes an exact id, with or without labs/ and a trailing slash', () => {
    expect(matchLabs('io_uring/01-fio', LABS).map((l) => l.id)).toEqual(['io_uring/01-fio']);
    expect(matchLabs('labs/io_uring/01-fio/', LABS).map((l) => l.id)).toEqual(['io_uring/01-fio']);
  });

  it('else every lab whose id or title (English or Chinese) contains the words', () => {
    expect(matchLabs('FIO', LABS).map((l) => l.id)).toEqual(['io_uring/01-fio']);
    expect(matchLabs('虚拟机', LABS).map((l) => l.id)).toEqual(['cloud/03-kvm']);
    expect(matchLabs('01-', LABS).map((l) => l.id)).toEqual(['ebpf/01-exec-tracer', 'io_uring/01-fio']);
    expect(matchLabs('nothing-like-it', LABS)).toEqual([]);
  });
});

describe('watch: re-run the lab when its sources or spec change', () => {
  function fakeLabTree(): { src: string; root: string; lab: LabInfo } {
    const src = tmp();
    const root = tmp();
    mkdirSync(join(src, 'io_uring'));
    writeFileSync(join(src, 'io_uring', 'cp.c'), 'int main(void) { return 0; }\n');
    mkdirSync(join(root, 'labs', 'io_uring', '02-cp'), { recursive: true });
    writeFileSync(join(root, 'labs', 'io_uring', '02-cp', 'cp.spec.ts'), '');
    const l: LabInfo = { ...lab('io_uring/01-fio'), sources: ['io_uring/cp.c'], spec: 'labs/io_uring/02-cp/cp.spec.ts' };
    return { src, root, lab: l };
  }

  it('watches the directories of the sources (in LAB_SRC or c/) and of the spec', () => {
    const t = fakeLabTree();
    expect(watchTargets([t.lab], t.src, t.root)).toEqual([join(t.src, 'io_uring'), join(t.root, 'labs', 'io_uring', '02-cp')]);
  });

  it('runs once per burst of saves, never two runs at once, and ignores editor swap files', async () => {
    const t = fakeLabTree();
    const runs: string[][] = [];
    let release: () => void = () => {};
    const w = watchAndRun({
      dirs: watchTargets([t.lab], t.src, t.root),
      debounceMs: 100,
      log: () => {},
      run: (changed) => {
        runs.push([...changed]);
        return new Promise<number>((done) => { release = () => done(1); });
      },
    });
    try {
      const file = join(t.src, 'io_uring', 'cp.c');
      writeFileSync(join(t.src, 'io_uring', '.cp.c.swp'), 'x');
      await new Promise((r) => setTimeout(r, 400));
      expect(runs, 'a vim swap file must not start a run').toEqual([]);

      for (let i = 0; i < 3; i++) writeFileSync(file, `int main(void) { return ${i}; }\n`);
      await expect.poll(() => runs.length, { timeout: 5_000 }).toBe(1);
      expect(runs[0]).toEqual([file]);

      // Saved again while the first run is going: queued, not started.
      writeFileSync(join(t.root, 'labs', 'io_uring', '02-cp', 'cp.spec.ts'), '// edited\n');
      writeFileSync(file, 'int main(void) { return 9; }\n');
      await new Promise((r) => setTimeout(r, 400));
      expect(runs.length).toBe(1);
      release();
      await expect.poll(() => runs.length, { timeout: 5_000 }).toBe(2);
      expect(new Set(runs[1])).toEqual(new Set([file, join(t.root, 'labs', 'io_uring', '02-cp', 'cp.spec.ts')]));
      release();
      await w.idle();
    } finally {
      w.close();
    }
  });
});

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'scripts', 'labs.ts'), ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run labs on this host', () => {
  it('list --json names every lab of labs/ with its area, titles and a status with reasons', async () => {
    const r = await cli(['list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { kernel: string; labs: LabRow[] };
    const labs = listLabs();
    expect(out.labs.map((l) => l.id)).toEqual(courseOrder(labs).map((l) => l.id));
    for (const row of out.labs) {
      expect(['ready', 'adapted', 'skipped']).toContain(row.status);
      expect(row.title.zh && row.title.en, `${row.id} lacks a title`).toBeTruthy();
      if (row.status !== 'ready') expect(row.reasons.length, `${row.id} is ${row.status} without a reason`).toBeGreaterThan(0);
    }
  }, 120_000);

  it('list prints one line per lab and the command to run one', async () => {
    const r = await cli(['list']);
    expect(r.code, r.stderr).toBe(0);
    for (const l of listLabs()) expect(r.stdout).toContain(`${l.id}`);
    expect(r.stdout).toMatch(/\d+ labs: \d+ ready, \d+ adapted, \d+ skipped on this host\./);
  }, 120_000);

  it('lab <unknown> exits 2 and lists the labs there are', async () => {
    const r = await cli(['run', 'no-such-lab-anywhere']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('No lab matches "no-such-lab-anywhere"');
    expect(r.stderr).toContain('00-environment');
  }, 60_000);
});

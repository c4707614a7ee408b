/**
 * Lab 2 — 资源铁笼: cgroup limits.
 * The seed's cgroup: cpu.max "10000 100000" (10 % of one CPU) and a 100M
 * memory limit, on a kl-… cgroup the lab makes and removes, through v2 files
 * on Ubuntu and v1 files on hosts like this one (helpers/kernel/cgroup.ts). The
 * student's cgexec.sh puts a command into the cgroup; cpu_hog and mem_hog
 * are the seed's "scripts that consume resources".
 *
 * The lab's anatomy: experiment.ts runs each workload through cgexec.sh and
 * collects the kernel's evidence, judge.ts turns it into facts and messages,
 * this file says what must hold.
 */
import { beforeAll, describe, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { cleanup, prepareCgroup, runControl, runCpuLimited, runMemHog, type CgroupSetup } from './experiment.js';
import * as judge from './judge.js';
import { OOM_MIB, SURVIVE_MIB } from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

const strict = () => process.env.LABS_STRICT === '1';

describe('Lab 2 — cgroup limits (资源铁笼)', () => {
  requires(...labRequires(import.meta.url));

  let setup: CgroupSetup;
  beforeAll(async () => {
    setup = await prepareCgroup();
  });

  it('a busy loop placed in the cgroup with cpu.max "10000 100000" gets about 10 % of one CPU, and is throttled', async (ctx) => {
    const c = judge.cpuLimited(await runCpuLimited(setup, (m) => adapted(ctx, m)));
    holds(c.ran);
    recordMetric(ctx, { name: 'CPU share under cpu.max 10000/100000', value: c.share * 100, unit: '% of one CPU', group: 'cgroup cpu' });
    recordMetric(ctx, { name: 'nr_throttled (3 s under the quota)', value: c.nrThrottled, unit: 'periods', group: 'cgroup cpu' });
    holds(c.charged);
  });

  it('the same busy loop without the limit uses far more CPU (control run)', async (ctx) => {
    const c = judge.control(await runControl(setup));
    recordMetric(ctx, { name: 'CPU share without a limit (control)', value: c.share * 100, unit: '% of one CPU', group: 'cgroup cpu' });
    holds(c.verdicts);
  });

  it(`a program touching ${OOM_MIB} MiB in the 100M cgroup is killed by the OOM killer (SIGKILL, oom_kill grew)`, async (ctx) => {
    const o = judge.oomKill(await runMemHog(setup, (m) => adapted(ctx, m), 'oom', OOM_MIB), strict());
    recordMetric(ctx, { name: 'oom_kill events in the 100M cgroup', value: o.kills, unit: 'kills', group: 'cgroup memory' });
    holds(o.killed);
    if (o.peakMiB !== undefined) recordMetric(ctx, { name: 'peak memory at the OOM kill', value: o.peakMiB, unit: 'MiB', group: 'cgroup memory' });
    holds(o.after);
  });

  it(`the same program asked for ${SURVIVE_MIB} MiB is charged ${SURVIVE_MIB} MiB in the 100M cgroup and finishes`, async (ctx) => {
    const s = judge.survives(await runMemHog(setup, (m) => adapted(ctx, m), 'mem', SURVIVE_MIB), strict());
    holds(s.ran);
    if (s.peakMiB !== undefined) recordMetric(ctx, { name: `peak memory of mem_hog ${SURVIVE_MIB}`, value: s.peakMiB, unit: 'MiB', group: 'cgroup memory' });
    holds(s.charged);
  });

  it('control: removed every cgroup it made', async () => {
    holds(judge.removed(await cleanup()));
  });
});

import { defineConfig } from 'vitest/config';

const junit = process.env.LABS_JUNIT;

export default defineConfig({
  test: {
    // lab-reporter: reports/labs.json and reports/labs.html after every run of the labs project.
    // The lab reporter first: its onInit prints, as the run's first line, which sources the lab specs test.
    reporters: junit ? ['./helpers/course/reporter.ts', 'default', ['junit', { outputFile: junit }]] : ['./helpers/course/reporter.ts', 'default'],
    teardownTimeout: 60_000,
    projects: [
      {
        test: {
          name: 'labs',
          include: ['labs/**/*.spec.ts'],
          // Labs share one kernel (tracepoints, cgroups, CPU time for measurements): one file at a time.
          fileParallelism: false,
          globalSetup: ['helpers/harness/global-setup.ts'],
          setupFiles: ['helpers/harness/setup-labs.ts', 'helpers/course/grading-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Not 0: vitest puts single-worker projects of group 0 last; 1 runs the labs first.
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts'],
          testTimeout: 60_000,
          // After the labs: the starter check runs lab specs itself and must not compete with them.
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});

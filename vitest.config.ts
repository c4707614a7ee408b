import { defineConfig } from 'vitest/config';

const junit = process.env.LABS_JUNIT;

export default defineConfig({
  test: {
    // lab-reporter: reports/labs.json and reports/labs.html after every run of the labs project.
    reporters: junit ? ['default', './helpers/lab-reporter.ts', ['junit', { outputFile: junit }]] : ['default', './helpers/lab-reporter.ts'],
    teardownTimeout: 60_000,
    projects: [
      {
        test: {
          name: 'labs',
          include: ['labs/**/*.spec.ts'],
          // Labs share one kernel (tracepoints, cgroups, CPU time for measurements): one file at a time.
          fileParallelism: false,
          globalSetup: ['helpers/global-setup.ts'],
          setupFiles: ['helpers/setup-labs.ts'],
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

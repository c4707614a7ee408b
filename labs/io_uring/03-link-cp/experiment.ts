/**
 * io_uring Lab 3's experiment: the student's link_cp and Lab 2's uring_cp built
 * against liburing, and a copy of the 64 MiB file under the io_uring
 * tracepoints with its io_uring_link events — the area's ../copy-experiment.ts,
 * shared with Lab 2. No assertions: the spec compares the files
 * (copy-check.ts) and judge.ts decides the rest.
 */
import { prepareCopies as prepare } from '../copy-experiment.js';

export { build, traceCopy, type CopySetup, type TracedCopy } from '../copy-experiment.js';

/** The scratch directory and the source files of the matrix. */
export const prepareCopies = () => prepare('link-cp');

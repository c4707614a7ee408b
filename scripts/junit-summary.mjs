// Print "N passed, N failed, N skipped" from a JUnit XML file (vitest's junit reporter).
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'reports/junit.xml';
let xml;
try {
  xml = readFileSync(file, 'utf8');
} catch {
  process.exit(1);
}
let tests = 0, failures = 0, errors = 0, skipped = 0;
for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
  tests++;
  const body = m[2] ?? '';
  if (/<failure\b/.test(body)) failures++;
  else if (/<error\b/.test(body)) errors++;
  else if (/<skipped\b/.test(body)) skipped++;
}
// Errors outside any test case (a spec file that failed to load) count as failures.
const root = xml.match(/<testsuites\b[^>]*>/)?.[0] ?? '';
const rootErrors = Number(root.match(/\berrors="(\d+)"/)?.[1] ?? 0);
const failed = failures + errors + Math.max(0, rootErrors - errors);
console.log(`${tests - failures - errors - skipped} passed, ${failed} failed, ${skipped} skipped`);

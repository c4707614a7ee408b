/**
 * Advice: what the reference does by convention and a good program may do
 * too (name the file in its error message, …), said to the student but never
 * failing a lab or costing a point. Printed as `[advice] …` and kept on the
 * test as an annotation of type "advice".
 */
import type { TestContext } from 'vitest';

export async function advise(ctx: TestContext, message: string): Promise<void> {
  console.log(`[advice] ${message}`);
  await ctx.annotate(message, 'advice');
}

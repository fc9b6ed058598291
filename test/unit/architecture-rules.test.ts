import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

// The map in docs/ARCHITECTURE.md is enforced by lint: these prove the rules are there and
// bite, on text linted as if it were a module of src/ (a real file, so typed linting works).
const eslint = new ESLint({ cwd: process.cwd() });

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

describe('lint keeps the architecture', { timeout: 60_000 }, () => {
  it.each([
    "import sharp from 'sharp';\nexport const s = sharp;\n",
    "import { getFirestore } from 'firebase-admin/firestore';\nexport const f = getFirestore;\n",
    "import got from 'got';\nexport const g = got;\n",
    "import { createClipdrop } from '../clipdrop/setup.js';\nexport const c = createClipdrop;\n",
    "import { viewOf } from '../adapters/firestore/job-fields.js';\nexport const v = viewOf;\n",
  ])('refuses an SDK, adapter or ClipDrop import under src/pipeline/: %s', async (code) => {
    expect(await ruleIds(code, 'src/pipeline/lent.ts')).toContain('no-restricted-imports');
  });

  it('lets the pipeline import its ports and RxJS', async () => {
    const code =
      "import { of } from 'rxjs';\nimport type { Log } from '../jobs/ports.js';\n" +
      'export const none = (log: Log) => of(log);\n';
    expect(await ruleIds(code, 'src/pipeline/lent.ts')).not.toContain('no-restricted-imports');
  });

  it('refuses a src/ module over 500 lines, and only past 500', async () => {
    const lines = (n: number) =>
      Array.from({ length: n }, (_, i) => `export const v${i} = ${i};`).join('\n') + '\n';
    expect(await ruleIds(lines(501), 'src/jobs/status.ts')).toContain('max-lines');
    expect(await ruleIds(lines(500), 'src/jobs/status.ts')).not.toContain('max-lines');
  });
});

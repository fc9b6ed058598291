/**
 * The rules files at the repository root, read as text. firestore.rules runs for real in
 * test/rules/; storage.rules cannot (the Storage rules emulator needs firebase-tools), so
 * this checks what can be checked by reading: it parses as blocks, and each of the worker's
 * prefixes is closed as docs/threat-model.md says.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WORKER_PREFIXES } from '../../src/jobs/gs-paths.js';

const read = (path: string) => readFileSync(path, 'utf8');
/** The text without comments, whitespace collapsed. */
const code = (text: string) =>
  text
    .replace(/\/\/.*$/gm, '')
    .replace(/\s+/g, ' ')
    .trim();

/** The body of `match /<path> { ... }`, braces balanced. */
function matchBlock(text: string, path: string): string | undefined {
  const head = `match /${path} {`;
  const start = text.indexOf(head);
  if (start < 0) return undefined;
  let depth = 0;
  for (let i = start + head.length - 1; i < text.length; i += 1) {
    if (text[i] === '{') depth += 1;
    if (text[i] === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  return undefined;
}

describe('firebase.json', () => {
  it('points at the rules and index files of the repository', () => {
    const config = JSON.parse(read('firebase.json')) as {
      firestore: { rules: string; indexes: string };
      storage: { rules: string };
    };
    expect(config.firestore).toEqual({
      rules: 'firestore.rules',
      indexes: 'firestore.indexes.json',
    });
    expect(config.storage).toEqual({ rules: 'storage.rules' });
    for (const file of [config.firestore.rules, config.firestore.indexes, config.storage.rules]) {
      expect(existsSync(file), file).toBe(true);
    }
  });
});

describe('storage.rules', () => {
  const rules = code(read('storage.rules'));

  it('is a version 2 rules file for firebase.storage with balanced braces', () => {
    expect(rules.startsWith("rules_version = '2'; service firebase.storage {")).toBe(true);
    let depth = 0;
    for (const ch of rules) {
      depth += ch === '{' ? 1 : ch === '}' ? -1 : 0;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect(depth).toBe(0);
  });

  it('names each of the worker’s prefixes, and no client writes under any of them', () => {
    expect(WORKER_PREFIXES).toHaveLength(3);
    for (const prefix of WORKER_PREFIXES) {
      const path = `${prefix.replace(/\/$/, '')}/`;
      const block = matchBlock(
        rules,
        path + (prefix === 'showcase-images/' ? '{userId}/{allPaths=**}' : '{allPaths=**}'),
      );
      expect(block, prefix).toBeDefined();
      expect(block, prefix).toMatch(/allow (read, )?write: if false;/);
      expect(block!.replace(/allow (read, )?write: if false;/, ''), prefix).not.toMatch(
        /allow [^:]*(write|create|update|delete)/,
      );
    }
  });

  it('lets no client read the checkpoints or the result cache', () => {
    for (const prefix of ['showcase-work', 'showcase-cache']) {
      const block = matchBlock(rules, `${prefix}/{allPaths=**}`);
      expect(block, prefix).toContain('allow read, write: if false;');
      expect(block!.match(/allow/g), prefix).toHaveLength(1);
    }
  });

  it('lets a user write only their own raw-uploads folder, images only, size-limited', () => {
    const block = matchBlock(rules, 'raw-uploads/{userId}/{allPaths=**}');
    expect(block).toBeDefined();
    for (const allow of block!.match(/allow [^;]*;/g) ?? []) {
      expect(allow).toContain('request.auth.uid == userId');
    }
    expect(block).toMatch(/allow create, update: [^;]*request\.resource\.size < /);
    expect(block).toMatch(/allow create, update: [^;]*contentType\.matches\('image\//);
  });

  it('has no rule that opens everything', () => {
    expect(rules).not.toMatch(/if true/);
  });
});

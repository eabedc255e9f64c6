/* SPDX-License-Identifier: Apache-2.0 */
// The retrieval evaluation (tests/eval/run.mjs) as a test: hybrid search must be at least
// as good as the better of keyword and vector search on recall@5 and on MRR.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { REPO_ROOT, ALMANAC_BIN } from '../lib/almanac.mjs';

test('retrieval evaluation: hybrid >= max(keyword, vector) on recall@5 and MRR', { timeout: 600000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-eval-'));
  try {
    const { code, output } = await new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [path.join(REPO_ROOT, 'tests', 'eval', 'run.mjs')], {
        env: { ...process.env, ALMANAC_BIN, EVAL_OUT: out },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const chunks = [];
      p.stdout.on('data', (c) => chunks.push(c));
      p.stderr.on('data', (c) => chunks.push(c));
      p.on('error', reject);
      p.on('close', (c) => resolve({ code: c, output: Buffer.concat(chunks).toString('utf8') }));
    });
    assert.notEqual(code, 2, `the evaluation could not run:\n${output}`);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'eval-latest.json'), 'utf8'));
    const { keyword, vector, hybrid } = report.modes;
    assert.ok(report.questions >= 40, 'at least 40 questions');
    for (const m of ['keyword', 'vector', 'hybrid']) assert.equal(report.modes[m].degraded, 0, `${m}: no degraded answers`);
    assert.ok(
      hybrid.recall_at_5 >= Math.max(keyword.recall_at_5, vector.recall_at_5) - 1e-9,
      `recall@5: hybrid ${hybrid.recall_at_5} < keyword ${keyword.recall_at_5} / vector ${vector.recall_at_5}\n${output}`,
    );
    assert.ok(
      hybrid.mrr >= Math.max(keyword.mrr, vector.mrr) - 1e-9,
      `MRR: hybrid ${hybrid.mrr} < keyword ${keyword.mrr} / vector ${vector.mrr}\n${output}`,
    );
    assert.equal(code, 0, output);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

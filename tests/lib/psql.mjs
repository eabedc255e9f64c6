/* SPDX-License-Identifier: Apache-2.0 */
// SQL from tests against a test PostgreSQL (tests/lib/services.mjs), through psql.

import { execFileSync } from 'node:child_process';

/** psql -At: the output, trimmed. */
export function sql(pg, query) {
  return execFileSync('psql', [pg.url, '-XAtqc', query], { encoding: 'utf8', maxBuffer: 256 << 20 }).trim();
}

/** Rows of a query as objects (via row_to_json). */
export function sqlRows(pg, query) {
  const out = sql(pg, `SELECT coalesce(json_agg(r), '[]') FROM (${query}) r`);
  return JSON.parse(out);
}

/* SPDX-License-Identifier: Apache-2.0 */
// Test certificate authorities made at test time with the openssl command: a CA and
// server certificates it signs, for PostgreSQL (and other servers) with TLS on loopback.
// Keys are EC P-256 (fast to make); everything lives in a temp dir removed at exit.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dirs = new Set();
process.on('exit', () => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const openssl = (args, cwd) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/** A new CA: {dir, caFile (its certificate's path), cert, key}. */
export function makeCa(name = 'Almanac Test CA') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-ca-'));
  dirs.add(dir);
  fs.chmodSync(dir, 0o755); // PostgreSQL, run as its own user, reads files copied from here
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-out', 'ca.crt'], dir);
  fs.chmodSync(path.join(dir, 'ca.crt'), 0o644);
  return { dir, caFile: path.join(dir, 'ca.crt'), cert: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8') };
}

let serial = 0;

/** A server certificate signed by ca for the given names: {cert, key} as PEM text. */
export function issue(ca, { dns = ['localhost'], ip = ['127.0.0.1'], cn = dns[0] || ip[0] } = {}) {
  const base = `server${++serial}`;
  const san = [...dns.map((d) => `DNS:${d}`), ...ip.map((i) => `IP:${i}`)].join(',');
  fs.writeFileSync(path.join(ca.dir, `${base}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${base}.key`], ca.dir);
  openssl(['req', '-new', '-key', `${base}.key`, '-subj', `/CN=${cn}`, '-out', `${base}.csr`], ca.dir);
  openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', `${base}.ext`, '-out', `${base}.crt`], ca.dir);
  return {
    cert: fs.readFileSync(path.join(ca.dir, `${base}.crt`), 'utf8'),
    key: fs.readFileSync(path.join(ca.dir, `${base}.key`), 'utf8'),
  };
}

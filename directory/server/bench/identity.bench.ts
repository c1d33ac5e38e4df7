/**
 * Identity benchmarks: the OIDC sign-in round trip against the in-process OpenID Provider
 * (start → OP login and consent → callback with code exchange, ID-token signature check and
 * userinfo), and backup-code derivation (Argon2id → HKDF) at the chosen parameters, each beside
 * a raw SHA-256 of the same code measured in the same run.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { createTestDatabase } from '@keytrail/server-kit/testing';
import { report, percentile, fmt, type Bench } from '../../../scripts/bench-util.ts';
import { identityConfig, registerIdentity } from '../src/identity/index.ts';
import { BACKUP_KDF_FLOOR, BACKUP_KDF_PARAMS, type KdfParams } from '../src/identity/config.ts';
import { deriveBackupKeys, randomBackupSecret } from '../src/identity/backup-code.ts';
import { DbDeviceDirectory, DEVICE_TABLE_SQL } from '../test/identity/helpers.ts';
import { startOp } from '../test/identity/oidc-idp.ts';

async function timeEach(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

async function kdf(): Promise<void> {
  const code = { slot: 1, secret: randomBackupSecret() };
  const salt = randomBytes(16);
  const sha = await timeEach(2000, () =>
    Promise.resolve(createHash('sha256').update(code.secret).digest()),
  );
  const shaMs = percentile(sha, 50);
  const rows: [string, KdfParams][] = [
    ['chosen: RFC 9106 option 2 (64 MiB, t=3, p=4)', BACKUP_KDF_PARAMS],
    ['floor accepted from clients (19 MiB, t=2, p=1)', BACKUP_KDF_FLOOR],
  ];
  for (const [name, p] of rows) {
    await deriveBackupKeys(code, salt, p); // warm-up
    const t = await timeEach(10, () => deriveBackupKeys(code, salt, p));
    const med = percentile(t, 50);
    report(
      `backup code KDF, ${name}`,
      `${fmt(med, 1)} ms`,
      `×${fmt(med / shaMs, 0)} a raw SHA-256 (${fmt(shaMs * 1000, 2)} µs)`,
    );
    if (p === BACKUP_KDF_PARAMS) {
      report('  8 codes at generation (client side, sequential)', `${fmt(med * 8, 0)} ms`);
    }
  }
}

async function oidc(): Promise<void> {
  const tdb = await createTestDatabase('identity-bench', ['directory', 'identity']);
  const publicUrl = 'http://127.0.0.1:8099';
  const redirectUri = `${publicUrl}/signin/acme/op/callback`;
  const op = await startOp({
    clientId: 'kt',
    clientSecret: 'kt-secret-0123456789abcdef',
    redirectUris: [redirectUri],
    users: { alice: { email: 'alice@acme.test', name: 'Alice', groups: ['eng'] } },
  });
  const app = Fastify();
  try {
    await tdb.db.query(DEVICE_TABLE_SQL);
    await tdb.db.query(`INSERT INTO tenants (id, name) VALUES ('acme', 'ACME')`);
    const operator = randomBytes(32).toString('base64url');
    const config = identityConfig({
      publicUrl,
      dataKey: new Uint8Array(randomBytes(32)),
      operatorTokenHash: new Uint8Array(createHash('sha256').update(operator).digest()),
      allowInsecureIdpRequests: true,
    });
    await registerIdentity(app, { db: tdb.db, config, devices: new DbDeviceDirectory(tdb.db) });
    const link = await app.inject({
      method: 'POST',
      url: '/identity/t/acme/admin/idps',
      headers: { authorization: `Bearer ${operator}` },
      payload: {
        kind: 'oidc',
        name: 'op',
        issuer: op.issuer,
        clientId: 'kt',
        clientSecret: 'kt-secret-0123456789abcdef',
        redirectUri,
        scopes: ['openid', 'email', 'profile', 'groups'],
      },
    });
    const idp = (JSON.parse(link.body) as { id: string }).id;
    const opOnly: number[] = [];
    const once = async () => {
      const s = JSON.parse(
        (await app.inject({ method: 'POST', url: `/identity/t/acme/idps/${idp}/start` })).body,
      ) as { flow: string; redirectUrl: string };
      const t = performance.now();
      const back = await op.login(s.redirectUrl, 'alice');
      opOnly.push(performance.now() - t);
      const r = await app.inject({
        method: 'POST',
        url: `/identity/t/acme/idps/${idp}/oidc/callback`,
        payload: { flow: s.flow, callbackUrl: back },
      });
      if (r.statusCode !== 200) throw new Error(`callback ${r.statusCode} ${r.body}`);
    };
    await once();
    opOnly.length = 0;
    const total = await timeEach(30, once);
    const p50 = percentile(total, 50);
    const opP50 = percentile(opOnly, 50);
    report(
      'OIDC sign-in round trip (start→OP→callback), p50',
      `${fmt(p50, 1)} ms`,
      `p95 ${fmt(percentile(total, 95), 1)} ms`,
    );
    report(
      '  of which the OP login+consent alone (baseline), p50',
      `${fmt(opP50, 1)} ms`,
      `start + callback (code exchange, JWKS, userinfo, DB) ≈ ${fmt(p50 - opP50, 1)} ms`,
    );
  } finally {
    await app.close();
    await op.close();
    await tdb.drop();
  }
}

const bench: Bench = async () => {
  await kdf();
  await oidc();
};
export default bench;

/**
 * A real SAML IdP for tests: Debian's SimpleSAMLphp (xmlseclibs, an XML-DSig stack independent
 * of ours) served by `php -S` on 127.0.0.1 with a throw-away configuration directory, and a
 * scripted browser that logs a user in and returns the auto-POST form's SAMLResponse.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Keypair } from './saml-forge.ts';

const WWW = '/usr/share/simplesamlphp/www';
const BASE_CONFIG = '/etc/simplesamlphp/config.php';

/** A running SimpleSAMLphp IdP. */
export interface Ssp {
  readonly baseUrl: string;
  readonly entityId: string;
  readonly ssoUrl: string;
  /** Logs in at the IdP from an AuthnRequest URL; returns SAMLResponse and RelayState. */
  login(
    authnRequestUrl: string,
    user: string,
    password: string,
  ): Promise<{ SAMLResponse: string; RelayState: string }>;
  close(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => {
        if (addr && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('no port'));
      });
    });
  });
}

const php = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Starts SimpleSAMLphp for one SP (entity id and ACS URL). */
export async function startSsp(o: {
  keypair: Keypair;
  spEntityId: string;
  acsUrl: string;
}): Promise<Ssp> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'kt-ssp-'));
  for (const d of ['cert', 'log', 'data', 'tmp', 'metadata', 'sessions']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'cert', 'idp.key'), o.keypair.key);
  writeFileSync(join(dir, 'cert', 'idp.crt'), o.keypair.cert);
  // Debian's config with its secrets include dropped, then our overrides.
  const base = readFileSync(BASE_CONFIG, 'utf8').replace(
    /require_once\([^)]*secrets\.inc\.php'\);/,
    '',
  );
  writeFileSync(
    join(dir, 'config.php'),
    `${base}
$config['baseurlpath'] = ${php(`${baseUrl}/`)};
$config['certdir'] = ${php(join(dir, 'cert') + '/')};
$config['loggingdir'] = ${php(join(dir, 'log') + '/')};
$config['datadir'] = ${php(join(dir, 'data') + '/')};
$config['tempdir'] = ${php(join(dir, 'tmp'))};
$config['secretsalt'] = ${php(randomBytes(16).toString('hex'))};
$config['auth.adminpassword'] = ${php(randomBytes(16).toString('hex'))};
$config['enable.saml20-idp'] = true;
$config['module.enable'] = ['exampleauth' => true, 'core' => true, 'saml' => true];
$config['session.cookie.secure'] = false;
$config['session.phpsession.savepath'] = ${php(join(dir, 'sessions'))};
$config['store.type'] = 'phpsession';
$config['logging.handler'] = 'file';
$config['logging.level'] = SimpleSAML\\Logger::WARNING;
$config['metadata.sources'] = [['type' => 'flatfile', 'directory' => ${php(join(dir, 'metadata'))}]];
`,
  );
  writeFileSync(
    join(dir, 'authsources.php'),
    `<?php
$config = [
  'admin' => ['core:AdminPassword'],
  'example-userpass' => ['exampleauth:UserPass',
    'alice:alicepass' => ['uid' => ['alice'], 'email' => ['alice@acme.test'], 'displayName' => ['Alice'], 'groups' => ['kt-admins', 'eng']],
  ],
];
`,
  );
  writeFileSync(
    join(dir, 'metadata', 'saml20-idp-hosted.php'),
    `<?php
$metadata['__DYNAMIC:1__'] = [
  'host' => '__DEFAULT__',
  'privatekey' => 'idp.key',
  'certificate' => 'idp.crt',
  'auth' => 'example-userpass',
  'saml20.sign.response' => true,
  'saml20.sign.assertion' => true,
  'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
  'authproc' => [
    10 => ['class' => 'saml:AttributeNameID', 'attribute' => 'email', 'Format' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'],
  ],
];
`,
  );
  writeFileSync(
    join(dir, 'metadata', 'saml20-sp-remote.php'),
    `<?php
$metadata[${php(o.spEntityId)}] = [
  'AssertionConsumerService' => ${php(o.acsUrl)},
  'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
];
`,
  );
  const proc: ChildProcess = spawn('php', ['-S', `127.0.0.1:${port}`, '-t', WWW], {
    env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: dir },
    stdio: 'ignore',
  });
  // Wait until it answers.
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${baseUrl}/saml2/idp/metadata.php`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function login(authnRequestUrl: string, user: string, password: string) {
    const jar = new Map<string, string>();
    const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const remember = (res: Response) => {
      for (const c of res.headers.getSetCookie()) {
        const pair = c.split(';')[0] ?? '';
        const eq = pair.indexOf('=');
        jar.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
    };
    const ssp = new URL(authnRequestUrl);
    let res = await fetch(ssp, { redirect: 'manual' });
    remember(res);
    let html = '';
    for (let hop = 0; hop < 10; hop++) {
      const loc = res.headers.get('location');
      if (loc) {
        res = await fetch(new URL(loc, res.url || ssp), {
          redirect: 'manual',
          headers: { cookie: cookie() },
        });
        remember(res);
        continue;
      }
      html = await res.text();
      const authState = /name="AuthState" value="([^"]+)"/.exec(html)?.[1];
      if (authState && !html.includes('SAMLResponse')) {
        const action = new URL(res.url || ssp.href);
        res = await fetch(action, {
          method: 'POST',
          redirect: 'manual',
          headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ username: user, password, AuthState: decodeHtml(authState) }),
        });
        remember(res);
        continue;
      }
      break;
    }
    const saml = /name="SAMLResponse" value="([^"]+)"/.exec(html)?.[1];
    const relay = /name="RelayState" value="([^"]*)"/.exec(html)?.[1];
    if (!saml) throw new Error(`SimpleSAMLphp gave no SAMLResponse: ${html.slice(0, 500)}`);
    return { SAMLResponse: decodeHtml(saml), RelayState: decodeHtml(relay ?? '') };
  }

  return {
    baseUrl,
    entityId: `${baseUrl}/saml2/idp/metadata.php`,
    ssoUrl: `${baseUrl}/saml2/idp/SSOService.php`,
    login,
    close() {
      proc.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function decodeHtml(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#0*39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x([0-9a-f]+);/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_m, d: string) => String.fromCharCode(Number(d)))
    .replace(/&amp;/g, '&');
}

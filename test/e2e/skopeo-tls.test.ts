import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  describeFailure,
  registryHost,
  signInContainers,
  requireTool,
  run,
  runOk,
  testTempDir,
  writeContainersConfig,
} from '../helpers/e2e.js';
import { writeMultiArchLayout } from '../helpers/oci-layout.js';
import { startTestBerth } from '../helpers/server.js';

// Our own openssl config, so nothing depends on the machine's /etc/ssl/openssl.cnf.
const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/** A throw-away CA and a server certificate it signed for 127.0.0.1 and localhost. */
async function makeCertificates(openssl: string, dir: string) {
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(cnf, OPENSSL_CNF);
  const file = (name: string) => join(dir, name);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await runOk(openssl, [
    'req',
    '-x509',
    '-config',
    cnf,
    '-extensions',
    'ca',
    ...key,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=Berth e2e test CA',
  ]);
  await runOk(openssl, [
    'req',
    '-new',
    '-config',
    cnf,
    ...key,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  await runOk(openssl, [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.crt'),
    '-days',
    '2',
    '-extfile',
    cnf,
    '-extensions',
    'server',
  ]);
  return { caFile: file('ca.crt'), certFile: file('server.crt'), keyFile: file('server.key') };
}

test('skopeo pushes over TLS when given the test CA, and refuses the certificate without it', async (t) => {
  const skopeo = requireTool(t, 'skopeo');
  const openssl = skopeo && requireTool(t, 'openssl');
  if (!skopeo || !openssl) return;
  const dir = testTempDir(t);
  const containers = writeContainersConfig(dir);
  const certs = await makeCertificates(openssl, dir);
  // skopeo's cert dir: files ending in .crt are trusted CAs (.cert/.key would be a client certificate).
  const certDir = join(dir, 'certs.d');
  mkdirSync(certDir);
  copyFileSync(certs.caFile, join(certDir, 'ca.crt'));
  const berth = await startTestBerth({ tls: { certFile: certs.certFile, keyFile: certs.keyFile } });
  t.after(() => berth.stop());
  assert.match(berth.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const layout = writeMultiArchLayout(join(dir, 'layout'));
  const ref = `docker://${registryHost(berth.url)}/e2e/tls:v1`;
  signInContainers(containers, registryHost(berth.url));
  const env = containers.env;

  await t.test('without the CA the certificate is rejected', async () => {
    const args = ['copy', '--policy', containers.policy, '--all', `oci:${layout.dir}:v1`, ref];
    const result = await run(skopeo, args, { env });
    assert.notEqual(result.code, 0, describeFailure(skopeo, args, result));
    assert.match(result.stderr, /x509: certificate signed by unknown authority/);
    const res = await run(skopeo, ['inspect', '--raw', '--tls-verify=false', ref], { env });
    assert.notEqual(res.code, 0, 'nothing may have been pushed');
    assert.match(res.stderr, /name unknown|manifest unknown/);
  });

  await t.test('with --dest-cert-dir holding the CA the copy verifies and succeeds', async () => {
    await runOk(
      skopeo,
      [
        'copy',
        '--policy',
        containers.policy,
        '--all',
        '--dest-cert-dir',
        certDir,
        `oci:${layout.dir}:v1`,
        ref,
      ],
      { env },
    );
    const raw = await runOk(skopeo, ['inspect', '--raw', '--cert-dir', certDir, ref], { env });
    assert.equal(JSON.parse(raw.stdout).manifests.length, 2);
    const tags = await runOk(skopeo, ['list-tags', '--cert-dir', certDir, ref.replace(/:v1$/, '')], { env });
    assert.deepEqual(JSON.parse(tags.stdout).Tags, ['v1']);
  });
});

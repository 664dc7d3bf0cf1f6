// The portal's Networking page in Chromium against a real Berth, checked where it matters: on the
// data plane, from chosen loopback source addresses. One browser for the file; every test saves
// screenshots at 1280 and 390 px under test-results/.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { portalWithRegistry, requireChromium, screenshot, signIn } from '../helpers/browser.js';
import { dataPlane, freePort } from '../helpers/management.js';

/** The status of `GET /v2/` on a registry from a source address (through the test helpers). */
async function v2From(berth: { url: string }, registry: string, from: string): Promise<number> {
  return (await dataPlane(berth, registry, 'GET', '/v2/', { from })).status;
}

/** The denial reason of a refused `GET /v2/`. */
async function refusalFrom(berth: { url: string }, registry: string, from: string): Promise<string> {
  const res = await dataPlane(berth, registry, 'GET', '/v2/', { from });
  assert.equal(res.status, 403, res.body.toString());
  return JSON.parse(res.body.toString()).errors[0].detail.reason;
}

test('Selected networks: add the client IP and a CIDR, save — the data plane then admits only those', async (t) => {
  if (!requireChromium(t)) return;
  const { page, berth, api, name } = await portalWithRegistry(t, 'net', 'Premium');
  assert.equal(await v2From(berth, name, '127.0.0.2'), 200, 'all networks are allowed to begin with');

  const patches: { ifMatch: string | undefined }[] = [];
  page.on('request', (request) => {
    if (request.method() === 'PATCH') patches.push({ ifMatch: request.headers()['if-match'] });
  });
  await signIn(page, berth, `#/registries/${name}/networking`);
  await page.getByLabel('Selected networks').check();
  await page.getByLabel("Add your client IP address ('127.0.0.1')").check();
  await page.getByRole('button', { name: 'Add address range' }).click();
  // The new row gets the focus, so a keyboard user types straight into it.
  await page.waitForFunction(() => document.activeElement?.id.startsWith('rule-'));
  await page.getByLabel('Address range 2', { exact: true }).fill('198.51.100.7/24');
  await page.getByText('Host bits are set; it will be saved as 198.51.100.0/24.').waitFor();
  await page.getByLabel('Allow trusted services to access this registry').uncheck();
  const etag = (await api('GET', `/api/registries/${name}`)).headers.get('etag') ?? undefined;
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  await screenshot(page, 'portal-networking');

  const saved = (await api('GET', `/api/registries/${name}`)).body.properties;
  assert.equal(saved.publicNetworkAccess, 'Enabled');
  assert.equal(saved.networkRuleSet.defaultAction, 'Deny');
  assert.deepEqual(
    saved.networkRuleSet.ipRules.map((r: { value: string }) => r.value),
    ['127.0.0.1', '198.51.100.0/24'],
  );
  assert.equal(saved.networkRuleBypassOptions, 'None');
  // One PATCH carried the whole change, conditional on the version the page had loaded.
  assert.equal(patches.length, 1);
  assert.equal(patches[0]!.ifMatch, etag);

  assert.equal(await refusalFrom(berth, name, '127.0.0.2'), 'ipNotAllowed');
  assert.equal(await v2From(berth, name, '127.0.0.1'), 200);
});

test('a bad CIDR, a duplicate and a row over the plan limit are shown inline; Save saves nothing', async (t) => {
  if (!requireChromium(t)) return;
  const skus = structuredClone(DEFAULT_CONFIG.skus);
  skus.Premium.maxIpRules = 2;
  const { page, berth, api, name } = await portalWithRegistry(t, 'bad', 'Premium', undefined, { skus });
  await signIn(page, berth, `#/registries/${name}/networking/public`);
  await page.getByLabel('Selected networks').check();
  let rows = 0;
  const addRow = async (value: string) => {
    await page.getByRole('button', { name: 'Add address range' }).click();
    rows += 1;
    await page.getByLabel(`Address range ${rows}`, { exact: true }).fill(value);
  };
  await addRow('10.0.0.0/8');
  await addRow('10.0.0.300/8');
  await page.getByText("'10.0.0.300/8' is not a valid IPv4 address or CIDR range").waitFor();
  await addRow('10.1.2.3/8');
  await page.getByText('Duplicates row 1 (both are 10.0.0.0/8).').waitFor();
  await addRow('192.0.2.1');
  await addRow('192.0.2.2');
  await page
    .getByText("Over the plan's limit: a registry in this SKU can have at most 2 IP rules.")
    .waitFor();

  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('alert').filter({ hasText: 'Nothing was saved' }).waitFor();
  // Focus moves to the first row in error, which is described by its message.
  const focused = await page.evaluate(() => {
    const el = document.activeElement as HTMLInputElement | null;
    return {
      value: el?.value,
      invalid: el?.getAttribute('aria-invalid'),
      message: document.getElementById(el?.getAttribute('aria-describedby') ?? '')?.textContent,
    };
  });
  assert.equal(focused.value, '10.0.0.300/8');
  assert.equal(focused.invalid, 'true');
  assert.match(focused.message ?? '', /not a valid IPv4 address/);
  await screenshot(page, 'portal-networking-invalid');

  const stored = (await api('GET', `/api/registries/${name}`)).body.properties;
  assert.equal(stored.networkRuleSet.defaultAction, 'Allow');
  assert.deepEqual(stored.networkRuleSet.ipRules, []);
  assert.equal(await v2From(berth, name, '127.0.0.2'), 200, 'nothing changed on the data plane');
});

test('Disabled public access: after Save the data plane refuses every public request', async (t) => {
  if (!requireChromium(t)) return;
  const { page, berth, name } = await portalWithRegistry(t, 'off', 'Premium');
  await signIn(page, berth, `#/registries/${name}/networking`);
  await page.getByLabel('Disabled').check();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  await screenshot(page, 'portal-networking-disabled');
  assert.equal(await refusalFrom(berth, name, '127.0.0.1'), 'publicNetworkAccessDisabled');
  assert.equal(await refusalFrom(berth, name, '127.0.0.2'), 'publicNetworkAccessDisabled');
});

test('a concurrent edit is reported (412) and nothing is overwritten; Discard loads the current settings', async (t) => {
  if (!requireChromium(t)) return;
  const { page, berth, api, name } = await portalWithRegistry(t, 'race', 'Premium');
  // Signing in shows the page before its settings (and their ETag) have loaded; the other editor must
  // come after that load, or the page would simply load their settings (the race this test is about).
  const loaded = page.waitForResponse(
    (response) =>
      response.request().method() === 'GET' && new URL(response.url()).pathname === `/api/registries/${name}`,
  );
  await signIn(page, berth, `#/registries/${name}/networking`);
  await loaded;
  // Someone else changes the rules after the page loaded them.
  const other = await api('PATCH', `/api/registries/${name}`, {
    properties: {
      networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '10.9.0.0/16' }] },
    },
  });
  assert.equal(other.status, 200, other.text);
  // The page's PATCH carries the ETag it loaded, which no longer matches: the server answers 412.
  const answers: number[] = [];
  page.on('response', (response) => {
    if (response.request().method() === 'PATCH') answers.push(response.status());
  });
  await page.getByLabel('Disabled').check();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('alert').filter({ hasText: 'Someone else changed this registry' }).waitFor();
  assert.deepEqual(answers, [412], 'the stale save was refused by the server itself');
  await page.getByRole('button', { name: 'Discard' }).click();
  // The page now shows what the other editor saved: Selected networks with their rule.
  const firstRow = page.getByLabel('Address range 1', { exact: true });
  await firstRow.waitFor();
  assert.equal(await firstRow.inputValue(), '10.9.0.0/16');
  assert.equal(await page.getByLabel('Selected networks').isChecked(), true);
  const stored = (await api('GET', `/api/registries/${name}`)).body.properties;
  assert.equal(stored.publicNetworkAccess, 'Enabled');
});

test('on a non-Premium SKU the controls are disabled with a notice explaining why', async (t) => {
  if (!requireChromium(t)) return;
  const { page, berth, name } = await portalWithRegistry(t, 'std', 'Standard');
  await signIn(page, berth, `#/registries/${name}/networking`);
  await page.getByText('Network rules need the Premium SKU. This registry is Standard').waitFor();
  assert.equal(await page.getByLabel('Selected networks').isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Save' }).isDisabled(), true);
  await screenshot(page, 'portal-networking-standard');
});

test('approve a private endpoint connection and reach the registry through it', async (t) => {
  if (!requireChromium(t)) return;
  const { page, berth, api, name } = await portalWithRegistry(t, 'pe', 'Premium', {
    publicNetworkAccess: 'Disabled',
  });
  const port = await freePort();
  const endpoint = { url: `http://127.0.0.1:${port}` };

  // The connection is added on the page; it opens its listener at once, Pending until approved.
  await signIn(page, berth, `#/registries/${name}/networking/private`);
  await page.getByText('There are no private endpoint connections.').waitFor();
  await page.getByLabel('Connection name').fill('pe1');
  await page.getByLabel('Listener address').fill(`127.0.0.1:${port}`);
  await page.getByRole('button', { name: 'Add (Pending until approved)' }).click();
  const row = page.getByRole('row', { name: /pe1/ });
  await row.getByText('Pending').waitFor();
  assert.equal(await refusalFrom(endpoint, name, '127.0.0.1'), 'privateEndpointNotApproved');

  await page.getByRole('button', { name: 'Approve pe1' }).click();
  await page.getByText("Connection 'pe1' is now Approved.").waitFor();
  await row.getByText('Approved', { exact: true }).waitFor();
  await screenshot(page, 'portal-private-access');

  assert.equal(await v2From(endpoint, name, '127.0.0.1'), 200, 'the approved endpoint serves');
  assert.equal(await refusalFrom(berth, name, '127.0.0.1'), 'publicNetworkAccessDisabled');

  await page.getByRole('button', { name: 'Remove', exact: true }).click();
  await page.getByRole('button', { name: 'Remove pe1' }).click();
  await page.getByText("Connection 'pe1' was removed").waitFor();
  assert.equal((await api('GET', `/api/registries/${name}/privateEndpointConnections`)).body.value.length, 0);
});

test('a refused address shows in the table and chart; one click allows it; the check box agrees', async (t) => {
  if (!requireChromium(t)) return;
  const { page, berth, api, name } = await portalWithRegistry(t, 'refused', 'Premium', {
    networkRuleSet: { defaultAction: 'Deny', ipRules: [] },
  });
  for (let i = 0; i < 3; i++) assert.equal(await refusalFrom(berth, name, '127.0.0.3'), 'ipNotAllowed');
  assert.equal(await refusalFrom(berth, name, '127.0.0.4'), 'ipNotAllowed');

  await signIn(page, berth, `#/registries/${name}/networking/refused`);
  const row = page.getByRole('row', { name: /127\.0\.0\.3/ });
  await row.getByRole('cell', { name: '3', exact: true }).waitFor();
  await row.getByText('ipNotAllowed').waitFor();
  await page.getByText(/Address not allowed: 4/).waitFor();
  await page.getByLabel('IP address').fill('127.0.0.3');
  await page.getByRole('button', { name: 'Check' }).click();
  await page.getByText(/127\.0\.0\.3 would be refused \(ipNotAllowed\)/).waitFor();

  await page.getByRole('button', { name: 'Allow 127.0.0.3' }).click();
  await page.getByText('Added a rule allowing 127.0.0.3.').waitFor();
  await row.getByText('Allowed by a rule').waitFor();
  await page.getByRole('button', { name: 'Check' }).click();
  await page.getByText('127.0.0.3 would be allowed by the rule 127.0.0.3.').waitFor();
  await screenshot(page, 'portal-refused-traffic');

  assert.equal(await v2From(berth, name, '127.0.0.3'), 200);
  assert.equal(await refusalFrom(berth, name, '127.0.0.4'), 'ipNotAllowed');
  const rules = (await api('GET', `/api/registries/${name}`)).body.properties.networkRuleSet.ipRules;
  assert.deepEqual(rules, [{ action: 'Allow', value: '127.0.0.3' }]);
});

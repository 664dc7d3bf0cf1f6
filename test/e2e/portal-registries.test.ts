// The portal in Chromium against a real Berth: sign in, create a registry, its overview, repositories
// with tags and manifest details, the "outside the rules" message, and access keys. One browser for
// the file; every test saves screenshots at 1280 and 390 px under test-results/.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, portalWithRegistry, requireChromium, screenshot, signIn } from '../helpers/browser.js';
import { apiFor, pushImageTo, uniqueName } from '../helpers/management.js';
import { startTestBerth, TEST_ADMIN_PASSWORD } from '../helpers/server.js';

test('sign in: a wrong password is refused on the form, the right one opens the registry list', async (t) => {
  if (!requireChromium(t)) return;
  const page = await openPage(t);
  const berth = await startTestBerth();
  t.after(() => berth.stop());
  await page.goto(`${berth.managementUrl}/`);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Invalid user name or password' }).waitFor();
  // Focus goes back to the form so a keyboard user can try again at once.
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'username');

  // Keyboard only: Tab to the fields, type, Enter submits.
  await page.getByLabel('User name').fill('');
  await page.getByLabel('Password').fill('');
  await page.getByLabel('User name').focus();
  await page.keyboard.type('admin');
  await page.keyboard.press('Tab');
  await page.keyboard.type(TEST_ADMIN_PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Registries' }).waitFor();
  await page.getByRole('link', { name: 'default' }).waitFor();
  await screenshot(page, 'portal-sign-in');

  // The session is an HttpOnly cookie: scripts cannot read it, and signing out ends it on the server.
  assert.equal(await page.evaluate(() => document.cookie), '');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  await page.reload();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
});

test('create a Premium registry and see its overview with the login command to copy', async (t) => {
  if (!requireChromium(t)) return;
  const page = await openPage(t);
  const berth = await startTestBerth();
  t.after(() => berth.stop());
  const api = apiFor(berth);
  await signIn(page, berth);
  const name = uniqueName('portal');

  // A bad name is refused inline, with focus on the field, and nothing is created.
  await page.getByLabel('Registry name').fill('no');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByText('Use 5 to 50 letters and digits').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'registry-name');

  await page.getByLabel('Registry name').fill(name);
  await page.getByLabel('SKU').selectOption('Premium');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name }).waitFor();
  const registry = await api('GET', `/api/registries/${name}`);
  assert.equal(registry.status, 200, registry.text);
  assert.equal(registry.body.sku.name, 'Premium');

  const port = new URL(berth.url).port;
  await page.getByText(`${name}.localhost:${port}`).first().waitFor();
  assert.equal(
    await page.getByLabel('docker login', { exact: true }).inputValue(),
    `docker login ${name}.localhost:${port}`,
  );
  await page.getByText('Storage').waitFor();
  await page.getByText(/0 B used of 500 GiB/).waitFor();
  await screenshot(page, 'portal-overview');
});

test("open a repository's tags and a manifest's details; outside the rules the list is replaced by a message", async (t) => {
  if (!requireChromium(t)) return;
  const { page, berth, api, name } = await portalWithRegistry(t, 'repos', 'Premium');
  const digest = await pushImageTo(berth, name, 'team/app', 'v1');
  await pushImageTo(berth, name, 'team/app', 'v2');
  // 21 more repositories that sort first, so team/app is on the second page of 20.
  for (let i = 0; i < 21; i++) await pushImageTo(berth, name, `a/r${String(i).padStart(2, '0')}`, 'v1');
  await signIn(page, berth, `#/registries/${name}/repositories`);

  const list = page.getByRole('list', { name: 'Repositories' });
  await list.getByRole('link', { name: 'a/r00' }).waitFor();
  assert.equal(await list.getByRole('link').count(), 20);
  assert.equal(await page.getByRole('button', { name: 'Previous page' }).isDisabled(), true);
  await page.getByRole('button', { name: 'Next page' }).click();
  await list.getByRole('link', { name: 'team/app' }).waitFor();
  assert.deepEqual(await list.getByRole('link').allTextContents(), ['a/r20', 'team/app']);
  assert.equal(await page.getByRole('button', { name: 'Next page' }).isDisabled(), true);
  await page.getByRole('button', { name: 'Previous page' }).click();
  await list.getByRole('link', { name: 'a/r00' }).waitFor();
  await page.getByRole('button', { name: 'Next page' }).click();

  await page.getByRole('link', { name: 'team/app' }).click();
  await page.getByRole('heading', { name: 'Tags' }).waitFor();
  await page.getByRole('link', { name: 'v1' }).click();
  await page.getByRole('heading', { name: 'Manifest of v1' }).waitFor();
  await page.getByText(digest).waitFor();
  await page.getByText('application/vnd.oci.image.manifest.v1+json').waitFor();
  await page.getByText(/\(1 layer\)/).waitFor();
  await screenshot(page, 'portal-repository-tags');

  // Deleting a tag asks first, then removes only that tag.
  await page.getByRole('row', { name: /v2/ }).getByRole('button', { name: 'Delete tag' }).click();
  await page.getByRole('button', { name: 'Delete tag v2' }).click();
  await page.getByText("Tag 'v2' was removed").waitFor();
  const tags = await api('GET', `/api/registries/${name}/repositories/team%2Fapp/tags`);
  assert.deepEqual(
    tags.body.value.map((tag: { name: string }) => tag.name),
    ['v1'],
  );

  // Deleting the manifest (by digest) removes it with its tags.
  await page.getByRole('button', { name: 'Delete manifest' }).click();
  await page.getByRole('button', { name: /^Delete manifest sha256:.* and its tags$/ }).click();
  await page.getByText(/Manifest sha256:\w+… and its tags were deleted/).waitFor();
  await page.getByText('This repository has no tags.').waitFor();
  const gone = await api('GET', `/api/registries/${name}/repositories/team%2Fapp/manifests/${digest}`);
  assert.equal(gone.status, 404, gone.text);

  // Once the browser's address (127.0.0.1) is outside the rules, the portal says so instead of listing.
  const denied = await api('PATCH', `/api/registries/${name}`, {
    properties: {
      networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '10.0.0.0/8' }] },
    },
  });
  assert.equal(denied.status, 200, denied.text);
  await page
    .getByRole('navigation', { name: 'Registry' })
    .getByRole('link', { name: 'Repositories' })
    .click();
  await page.getByText("Repositories can't be listed from your network.").waitFor();
  await page.getByText("client with IP '127.0.0.1' is not allowed").waitFor();
  assert.equal(await page.getByRole('link', { name: 'team/app' }).count(), 0);
  await screenshot(page, 'portal-repositories-refused');
});

test('access keys: enable the admin user, see and regenerate a password', async (t) => {
  if (!requireChromium(t)) return;
  const { page, berth, api, name } = await portalWithRegistry(t, 'keys', 'Standard');
  await signIn(page, berth, `#/registries/${name}/access-keys`);
  await page.getByLabel(/Enable the admin user/).check();
  await page.getByText('The admin user is enabled.').waitFor();
  const before = (await api('POST', `/api/registries/${name}/listCredentials`)).body.passwords[0]
    .value as string;
  assert.equal(await page.getByLabel('password', { exact: true }).inputValue(), before);
  await page.getByRole('button', { name: 'Regenerate' }).first().click();
  await page.getByRole('button', { name: 'Regenerate password', exact: true }).click();
  await page.getByText('password was regenerated').waitFor();
  const afterRegen = (await api('POST', `/api/registries/${name}/listCredentials`)).body.passwords[0]
    .value as string;
  assert.notEqual(afterRegen, before);
  assert.equal(await page.getByLabel('password', { exact: true }).inputValue(), afterRegen);
  await screenshot(page, 'portal-access-keys');
});

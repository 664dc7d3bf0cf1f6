import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { configDir, normalizeServer, ProfileStore, resolveConnection } from '../../../src/cli/config.js';
import { CliError } from '../../../src/cli/errors.js';

describe('config directory', () => {
  test('BERTH_CONFIG_DIR wins, then XDG_CONFIG_HOME/berth, then ~/.config/berth', () => {
    assert.equal(configDir({ BERTH_CONFIG_DIR: '/c', XDG_CONFIG_HOME: '/x' }, '/home/u'), '/c');
    assert.equal(configDir({ XDG_CONFIG_HOME: '/x' }, '/home/u'), '/x/berth');
    assert.equal(configDir({}, '/home/u'), '/home/u/.config/berth');
  });
});

describe('ProfileStore', () => {
  test('writes config.json with mode 0600 in a 0700 directory, and reads it back', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'berth-cfg-')), 'nested', 'berth');
    const store = new ProfileStore(dir);
    assert.equal(store.read(), undefined);
    store.write({ server: 'http://127.0.0.1:5080', username: 'admin', password: 's3cret' });
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(store.file).mode & 0o777, 0o600);
    assert.deepEqual(store.read(), {
      server: 'http://127.0.0.1:5080',
      username: 'admin',
      password: 's3cret',
    });
    assert.equal(JSON.parse(readFileSync(store.file, 'utf8')).version, 1);
    assert.equal(store.remove(), true);
    assert.equal(store.remove(), false);
    assert.equal(store.read(), undefined);
  });

  test('a corrupt file is a clear error that says to log in again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-cfg-'));
    writeFileSync(join(dir, 'config.json'), '{not json');
    assert.throws(
      () => new ProfileStore(dir).read(),
      (e: unknown) => e instanceof CliError && /berth login/.test(e.message),
    );
  });
});

describe('resolveConnection', () => {
  const profile = { server: 'http://stored:5080', username: 'u', password: 'p' };

  test('server: --server > BERTH_SERVER > profile', () => {
    assert.equal(
      resolveConnection({ server: 'http://flag:1' }, { BERTH_SERVER: 'http://env:2' }, profile).server,
      'http://flag:1',
    );
    assert.equal(resolveConnection({}, { BERTH_SERVER: 'http://env:2' }, profile).server, 'http://env:2');
    assert.equal(resolveConnection({}, {}, profile).server, 'http://stored:5080');
  });

  test('no server anywhere is an error naming the fixes', () => {
    assert.throws(() => resolveConnection({}, {}, undefined), /berth login --server/);
  });

  test('credentials: BERTH_API_KEY > BERTH_USERNAME/PASSWORD > profile > none', () => {
    const env = { BERTH_API_KEY: 'k', BERTH_USERNAME: 'eu', BERTH_PASSWORD: 'ep' };
    assert.deepEqual(resolveConnection({}, env, profile).credentials, { kind: 'apiKey', apiKey: 'k' });
    assert.deepEqual(
      resolveConnection({}, { BERTH_USERNAME: 'eu', BERTH_PASSWORD: 'ep' }, profile).credentials,
      {
        kind: 'basic',
        username: 'eu',
        password: 'ep',
      },
    );
    assert.deepEqual(resolveConnection({}, {}, profile).credentials, {
      kind: 'basic',
      username: 'u',
      password: 'p',
    });
    assert.deepEqual(resolveConnection({}, {}, { server: 'http://s', apiKey: 'pk' }).credentials, {
      kind: 'apiKey',
      apiKey: 'pk',
    });
    assert.deepEqual(resolveConnection({ server: 'http://s' }, {}, undefined).credentials, { kind: 'none' });
  });

  test('servers are normalised: a bare host:port means http, trailing slashes go', () => {
    assert.equal(normalizeServer('127.0.0.1:5080'), 'http://127.0.0.1:5080');
    assert.equal(normalizeServer('https://berth.example.com/'), 'https://berth.example.com');
    assert.throws(() => normalizeServer('ftp://x'), /http or https/);
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../../src/config.js';

test('limits have sane defaults and come from the config file and the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
  try {
    const file = join(dir, 'berth.config.json');
    writeFileSync(file, JSON.stringify({ limits: { maxConnections: 100, headerTimeoutMs: 5000 } }));
    const config = loadConfig({ BERTH_CONFIG: file, BERTH_MAX_UPLOAD_SESSIONS_PER_CLIENT: '7' });
    assert.equal(config.limits.maxConnections, 100);
    assert.equal(config.limits.headerTimeoutMs, 5000);
    assert.equal(config.limits.maxUploadSessionsPerClient, 7);
    assert.equal(config.limits.maxConnectionsPerClient, DEFAULT_CONFIG.limits.maxConnectionsPerClient);
    assert.equal(loadConfig({ BERTH_BODY_MIN_BYTES_PER_SECOND: '0' }).limits.bodyMinBytesPerSecond, 0);
    assert.throws(() => loadConfig({ BERTH_MAX_CONNECTIONS: 'many' }), ConfigError);
    assert.throws(() => loadConfig({ BERTH_HEADER_TIMEOUT_MS: '0' }), /limits.headerTimeoutMs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

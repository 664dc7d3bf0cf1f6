import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { ChangeEvent } from '../../src/store/change-feed.js';
import type { AuthStore, ScopeMapRecord, SignInRecord, TokenRecord } from '../../src/store/types.js';

/**
 * A fresh, empty store. `node()` opens another store on the same database, as a second Berth node
 * would (its own connection or pool); `dispose` closes every store it opened and removes the data.
 * `events` collects what the store published on its change feed, when it takes one. Gives undefined
 * when the database is not installed (the test is then skipped, or fails under BERTH_REQUIRE_E2E=1).
 */
export type SharedStoreFactory<T> = (t: TestContext) => Promise<SharedStores<T> | undefined>;

/** What a `SharedStoreFactory` opens (undefined when the test is skipped). */
export interface SharedStores<T> {
  store: T;
  node(): Promise<T>;
  events?: ChangeEvent[];
  dispose(): Promise<void>;
}

/**
 * Wraps one contract test: opens the stores, runs `fn`, disposes of them; returns at once when the
 * factory skipped the test (its database is not installed).
 */
export function withStores<T>(
  factory: SharedStoreFactory<T>,
  fn: (store: T, opened: SharedStores<T>) => Promise<void>,
): (t: TestContext) => Promise<void> {
  return async (t) => {
    const opened = await factory(t);
    if (!opened) return;
    try {
      await fn(opened.store, opened);
    } finally {
      await opened.dispose();
    }
  };
}

const REG = 'contract';
const T = Date.UTC(2026, 11, 1, 10, 0, 0);

/** A scope map as the management API would create it. */
export function scopeMap(name: string, extra: Partial<ScopeMapRecord> = {}): ScopeMapRecord {
  return {
    registry: REG,
    name,
    description: `map ${name}`,
    actions: ['repositories/app/content/read', 'repositories/app/metadata/read'],
    createdAt: new Date(T),
    updatedAt: new Date(T),
    version: 1,
    ...extra,
  };
}

/** A token with one expiring and one open-ended password. */
export function token(name: string, extra: Partial<TokenRecord> = {}): TokenRecord {
  return {
    registry: REG,
    name,
    scopeMap: 'readers',
    status: 'enabled',
    passwords: [
      { name: 'password1', hash: `hash1-${name}`, createdAt: new Date(T), expiry: new Date(T + 86_400_000) },
      { name: 'password2', hash: `hash2-${name}`, createdAt: new Date(T + 1) },
    ],
    properties: { allowedIpRanges: ['10.0.0.0/8'] },
    createdAt: new Date(T),
    updatedAt: new Date(T),
    version: 1,
    ...extra,
  };
}

function signIn(extra: Partial<SignInRecord> = {}): SignInRecord {
  return {
    minute: new Date(T),
    registry: REG,
    identity: 'alice',
    clientIp: '127.0.0.2',
    listener: 'data',
    result: 'success',
    count: 1,
    lastSeen: new Date(T + 5000),
    ...extra,
  };
}

/** The behaviour every `AuthStore` must have, on one node and between two nodes racing. */
export function authStoreContract(name: string, factory: SharedStoreFactory<AuthStore>): void {
  describe(`AuthStore contract: ${name}`, () => {
    const withStore = (fn: (store: AuthStore, more: SharedStores<AuthStore>) => Promise<void>) =>
      withStores(factory, fn);

    it(
      'signing keys: added once by kid, listed oldest first with every field',
      withStore(async (store) => {
        assert.deepEqual(await store.listSigningKeys(), []);
        const newer = {
          kid: 'k2',
          alg: 'ES256',
          publicJwk: '{"kty":"EC","x":"2"}',
          sealedPrivateJwk: 'sealed-2',
          createdAt: new Date(T + 1000),
        };
        const older = { ...newer, kid: 'k1', publicJwk: '{"kty":"EC","x":"1"}', createdAt: new Date(T) };
        assert.equal(await store.addSigningKey(newer), true);
        assert.equal(await store.addSigningKey(older), true);
        assert.equal(await store.addSigningKey({ ...older, sealedPrivateJwk: 'other' }), false);
        assert.deepEqual(await store.listSigningKeys(), [older, newer]);
      }),
    );

    it(
      'data-plane roles: several per principal, idempotent, listed per principal and per registry',
      withStore(async (store) => {
        await store.addDataPlaneRole({ principalId: 'p1', registry: 'b', role: 'AcrPush' });
        await store.addDataPlaneRole({ principalId: 'p1', registry: 'a', role: 'AcrPush' });
        await store.addDataPlaneRole({ principalId: 'p1', registry: 'a', role: 'AcrPull' });
        await store.addDataPlaneRole({ principalId: 'p1', registry: 'a', role: 'AcrPull' });
        await store.addDataPlaneRole({ principalId: 'p0', registry: 'a', role: 'AcrDelete' });
        assert.deepEqual(await store.dataPlaneRolesOf('p1'), [
          { principalId: 'p1', registry: 'a', role: 'AcrPull' },
          { principalId: 'p1', registry: 'a', role: 'AcrPush' },
          { principalId: 'p1', registry: 'b', role: 'AcrPush' },
        ]);
        assert.deepEqual(await store.dataPlaneRolesOn('a'), [
          { principalId: 'p0', registry: 'a', role: 'AcrDelete' },
          { principalId: 'p1', registry: 'a', role: 'AcrPull' },
          { principalId: 'p1', registry: 'a', role: 'AcrPush' },
        ]);
        assert.equal(
          await store.removeDataPlaneRole({ principalId: 'p1', registry: 'a', role: 'AcrPull' }),
          true,
        );
        assert.equal(
          await store.removeDataPlaneRole({ principalId: 'p1', registry: 'a', role: 'AcrPull' }),
          false,
        );
        assert.deepEqual(
          (await store.dataPlaneRolesOf('p1')).map((r) => `${r.registry}/${r.role}`),
          ['a/AcrPush', 'b/AcrPush'],
        );
        assert.deepEqual(await store.dataPlaneRolesOf('nobody'), []);
      }),
    );

    it(
      'scope maps: created once, read back, listed by name, updated only at the expected version',
      withStore(async (store) => {
        assert.equal(await store.getScopeMap(REG, 'readers'), undefined);
        assert.equal(await store.createScopeMap(scopeMap('readers')), true);
        assert.equal(await store.createScopeMap(scopeMap('readers', { description: 'again' })), false);
        assert.equal(await store.createScopeMap(scopeMap('admins', { actions: [] })), true);
        assert.deepEqual(await store.getScopeMap(REG, 'readers'), scopeMap('readers'));
        assert.deepEqual(
          (await store.listScopeMaps(REG)).map((m) => [m.name, m.actions.length]),
          [
            ['admins', 0],
            ['readers', 2],
          ],
        );
        assert.deepEqual(await store.listScopeMaps('elsewhere'), []);
        const changed = scopeMap('readers', {
          description: 'changed',
          actions: ['repositories/*/content/write'],
          updatedAt: new Date(T + 60_000),
          version: 2,
        });
        assert.equal(await store.updateScopeMap(changed, 2), false, 'the stored version is 1');
        assert.equal(await store.updateScopeMap(changed, 1), true);
        assert.equal(await store.updateScopeMap({ ...changed, version: 3 }, 1), false, 'moved on to 2');
        assert.deepEqual(await store.getScopeMap(REG, 'readers'), changed, 'createdAt is kept');
        assert.equal(await store.updateScopeMap(scopeMap('missing', { version: 2 }), 1), false);
        assert.equal(await store.deleteScopeMap(REG, 'readers'), true);
        assert.equal(await store.deleteScopeMap(REG, 'readers'), false);
        assert.equal(await store.getScopeMap(REG, 'readers'), undefined);
      }),
    );

    it(
      'tokens: created once under the limit, passwords and properties read back, compare-and-swap updates',
      withStore(async (store) => {
        assert.equal(await store.createToken(token('t1'), 2), 'created');
        assert.equal(await store.createToken(token('t1'), 2), 'exists');
        assert.equal(await store.createToken(token('t0', { passwords: [], properties: {} }), 2), 'created');
        assert.equal(await store.createToken(token('t2'), 2), 'limit');
        assert.equal(
          await store.createToken(token('t2', { registry: 'other' }), 2),
          'created',
          'per registry',
        );
        assert.equal(await store.countTokens(REG), 2);
        assert.equal(await store.countTokens('nothing'), 0);
        assert.deepEqual(await store.getToken(REG, 't1'), token('t1'));
        assert.equal((await store.getToken(REG, 't1'))!.passwords[1]!.expiry, undefined);
        assert.deepEqual(
          (await store.listTokens(REG)).map((t) => t.name),
          ['t0', 't1'],
        );
        const disabled = token('t1', {
          status: 'disabled',
          scopeMap: 'writers',
          passwords: [{ name: 'password2', hash: 'new', createdAt: new Date(T + 9) }],
          properties: {},
          updatedAt: new Date(T + 10),
          version: 2,
        });
        assert.equal(await store.updateToken(disabled, 5), false);
        assert.equal(await store.updateToken(disabled, 1), true);
        assert.equal(await store.updateToken({ ...disabled, version: 3 }, 1), false);
        assert.deepEqual(await store.getToken(REG, 't1'), disabled);
        assert.equal(await store.deleteToken(REG, 't1'), true);
        assert.equal(await store.deleteToken(REG, 't1'), false);
        assert.equal(await store.getToken(REG, 't1'), undefined);
        assert.equal(await store.createToken(token('t2'), 2), 'created', 'the freed slot is usable');
      }),
    );

    it(
      'sign-ins: counts of one minute and key add up, filtered by registry, time and result, newest first',
      withStore(async (store) => {
        await store.appendSignIns([signIn(), signIn({ count: 4, lastSeen: new Date(T + 1000) })]);
        await store.appendSignIns([
          signIn({ count: 2, lastSeen: new Date(T + 9000) }),
          signIn({ result: 'failure', identity: 'mallory', lastSeen: new Date(T + 2000) }),
          signIn({ minute: new Date(T + 60_000), lastSeen: new Date(T + 61_000) }),
          signIn({ registry: '*', listener: 'management', lastSeen: new Date(T + 3000) }),
        ]);
        const all = await store.querySignIns({ limit: 100 });
        assert.deepEqual(
          all.map((r) => [
            r.registry,
            r.identity,
            r.minute.getTime() - T,
            r.result,
            r.count,
            r.lastSeen.getTime() - T,
          ]),
          [
            [REG, 'alice', 60_000, 'success', 1, 61_000],
            [REG, 'alice', 0, 'success', 7, 9000],
            ['*', 'alice', 0, 'success', 1, 3000],
            [REG, 'mallory', 0, 'failure', 1, 2000],
          ],
        );
        assert.deepEqual(
          all[2],
          signIn({ registry: '*', listener: 'management', lastSeen: new Date(T + 3000) }),
        );
        assert.equal((await store.querySignIns({ registry: '*', limit: 100 })).length, 1);
        assert.deepEqual(
          (await store.querySignIns({ result: 'failure', limit: 100 })).map((r) => r.identity),
          ['mallory'],
        );
        assert.deepEqual(
          (await store.querySignIns({ since: new Date(T + 1), limit: 100 })).map((r) => r.count),
          [1],
        );
        assert.equal((await store.querySignIns({ registry: REG, result: 'success', limit: 1 })).length, 1);
      }),
    );

    it(
      'sign-ins are pruned by age, then to the newest rows within the bound',
      withStore(async (store) => {
        const rows: SignInRecord[] = [];
        for (let m = 0; m < 10; m++)
          for (const identity of ['a', 'b'])
            rows.push(
              signIn({ identity, minute: new Date(T + m * 60_000), lastSeen: new Date(T + m * 60_000) }),
            );
        await store.appendSignIns(rows);
        await store.pruneSignIns(new Date(T + 2 * 60_000), 1000);
        assert.equal((await store.querySignIns({ limit: 100 })).length, 16, 'minutes 0 and 1 are gone');
        await store.pruneSignIns(new Date(0), 5);
        const left = await store.querySignIns({ limit: 100 });
        assert.equal(left.length, 5);
        assert.ok(
          left.every((r) => r.minute.getTime() >= T + 7 * 60_000),
          'the newest minutes are kept',
        );
        await store.pruneSignIns(new Date(0), 0);
        assert.deepEqual(await store.querySignIns({ limit: 100 }), []);
      }),
    );

    it(
      'two nodes pruning the sign-in log at once leave the bound, and the newest rows',
      withStore(async (store, { node }) => {
        const other = await node();
        const rows = Array.from({ length: 40 }, (_, m) =>
          signIn({ minute: new Date(T + m * 60_000), lastSeen: new Date(T + m * 60_000) }),
        );
        await store.appendSignIns(rows);
        await Promise.all([store.pruneSignIns(new Date(0), 10), other.pruneSignIns(new Date(0), 7)]);
        const left = await store.querySignIns({ limit: 100 });
        assert.ok(left.length <= 10 && left.length >= 7, String(left.length));
        assert.equal(left[0]!.minute.getTime(), T + 39 * 60_000);
      }),
    );

    it(
      'deleteAuthForRegistry drops the registry’s tokens, scope maps, roles and sign-ins, nothing else',
      withStore(async (store) => {
        for (const registry of [REG, 'kept']) {
          await store.createScopeMap(scopeMap('m', { registry }));
          await store.createToken(token('t', { registry }), 10);
          await store.addDataPlaneRole({ principalId: 'p', registry, role: 'AcrPull' });
          await store.appendSignIns([signIn({ registry })]);
        }
        await store.addSigningKey({
          kid: 'k',
          alg: 'ES256',
          publicJwk: '{}',
          sealedPrivateJwk: 's',
          createdAt: new Date(T),
        });
        await store.deleteAuthForRegistry(REG);
        assert.deepEqual(await store.listTokens(REG), []);
        assert.deepEqual(await store.listScopeMaps(REG), []);
        assert.deepEqual(await store.dataPlaneRolesOn(REG), []);
        assert.deepEqual(await store.querySignIns({ registry: REG, limit: 10 }), []);
        assert.equal((await store.listTokens('kept')).length, 1);
        assert.equal((await store.listScopeMaps('kept')).length, 1);
        assert.equal((await store.dataPlaneRolesOn('kept')).length, 1);
        assert.equal((await store.querySignIns({ registry: 'kept', limit: 10 })).length, 1);
        assert.equal((await store.listSigningKeys()).length, 1);
      }),
    );

    it(
      'publishes a change event after each write that changed something, and none after one that did not',
      withStore(async (store, { events }) => {
        assert.ok(events, 'the store takes a change feed');
        const take = () => events.splice(0).map((e) => JSON.stringify(e));
        const key = {
          kid: 'k1',
          alg: 'ES256',
          publicJwk: '{}',
          sealedPrivateJwk: 's',
          createdAt: new Date(T),
        };
        await store.addSigningKey(key);
        await store.addSigningKey(key);
        assert.deepEqual(take(), ['{"kind":"signingKey","kid":"k1"}']);
        const role = { principalId: 'p1', registry: REG, role: 'AcrPull' as const };
        await store.addDataPlaneRole(role);
        await store.addDataPlaneRole(role);
        await store.removeDataPlaneRole(role);
        await store.removeDataPlaneRole(role);
        assert.deepEqual(take(), Array(2).fill('{"kind":"roles","principalId":"p1"}'));
        const map = `{"kind":"scopeMap","registry":"${REG}","name":"m"}`;
        await store.createScopeMap(scopeMap('m'));
        await store.createScopeMap(scopeMap('m'));
        await store.updateScopeMap(scopeMap('m', { version: 2 }), 1);
        await store.updateScopeMap(scopeMap('m', { version: 2 }), 1);
        await store.deleteScopeMap(REG, 'm');
        await store.deleteScopeMap(REG, 'm');
        assert.deepEqual(take(), [map, map, map]);
        const tok = `{"kind":"token","registry":"${REG}","name":"t"}`;
        await store.createToken(token('t'), 1);
        await store.createToken(token('t'), 1);
        await store.createToken(token('u'), 1);
        await store.updateToken(token('t', { version: 2 }), 1);
        await store.updateToken(token('t', { version: 2 }), 1);
        await store.deleteToken(REG, 't');
        await store.deleteToken(REG, 't');
        assert.deepEqual(take(), [tok, tok, tok]);
        await store.createToken(token('t'), 1);
        await store.createScopeMap(scopeMap('m'));
        await store.addDataPlaneRole(role);
        take();
        await store.deleteAuthForRegistry(REG);
        assert.deepEqual(take().sort(), [tok, map, '{"kind":"roles","principalId":"p1"}'].sort());
      }),
    );

    it(
      'two nodes racing for the last token slots: exactly the limit exists afterwards',
      withStore(async (store, { node }) => {
        const other = await node();
        for (let i = 0; i < 3; i++) assert.equal(await store.createToken(token(`pre${i}`), 5), 'created');
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) => (i % 2 ? other : store).createToken(token(`race${i}`), 5)),
        );
        assert.equal(results.filter((r) => r === 'created').length, 2, results.join(','));
        assert.equal(results.filter((r) => r === 'limit').length, 10);
        assert.equal(await store.countTokens(REG), 5);
        assert.equal((await other.listTokens(REG)).length, 5);
        // The same name from both nodes at once: one creates it, the other finds it.
        const same = await Promise.all([
          store.createToken(token('same', { registry: 'r2' }), 5),
          other.createToken(token('same', { registry: 'r2' }), 5),
        ]);
        assert.deepEqual(same.sort(), ['created', 'exists']);
      }),
    );

    it(
      'of many writers on two nodes at one version, exactly one update of a token or scope map wins',
      withStore(async (store, { node }) => {
        const other = await node();
        await store.createToken(token('t'), 10);
        await store.createScopeMap(scopeMap('m'));
        const tokenWins = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            (i % 2 ? other : store).updateToken(token('t', { scopeMap: `w${i}`, version: 2 }), 1),
          ),
        );
        assert.equal(tokenWins.filter(Boolean).length, 1);
        const winner = tokenWins.indexOf(true);
        assert.equal((await other.getToken(REG, 't'))!.scopeMap, `w${winner}`);
        const mapWins = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            (i % 2 ? other : store).updateScopeMap(scopeMap('m', { description: `d${i}`, version: 2 }), 1),
          ),
        );
        assert.equal(mapWins.filter(Boolean).length, 1);
        assert.equal((await store.getScopeMap(REG, 'm'))!.description, `d${mapWins.indexOf(true)}`);
      }),
    );

    it(
      'sign-in counts appended by two nodes at once add up exactly',
      withStore(async (store, { node }) => {
        const other = await node();
        const batch = (n: number) =>
          ['alice', 'bob', 'carol'].map((identity) =>
            signIn({ identity, count: n, lastSeen: new Date(T + n * 100) }),
          );
        await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).appendSignIns(batch(i + 1))),
        );
        const rows = await store.querySignIns({ limit: 10 });
        assert.deepEqual(rows.map((r) => [r.identity, r.count, r.lastSeen.getTime() - T]).sort(), [
          ['alice', 55, 1000],
          ['bob', 55, 1000],
          ['carol', 55, 1000],
        ]);
      }),
    );
  });
}

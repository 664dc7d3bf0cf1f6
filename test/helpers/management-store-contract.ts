import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  DenialAuditStore,
  DenialBucket,
  IdentityRecord,
  IdentityStore,
  IpSetStore,
} from '../../src/store/types.js';
import { withStores, type SharedStoreFactory, type SharedStores } from './auth-store-contract.js';

/** What the management store is: identities and roles, the denial log and named IP sets. */
export type ManagementStore = IdentityStore & DenialAuditStore & IpSetStore;

const REG = 'contract';
const T = Date.UTC(2026, 11, 1, 10, 0, 0);

function identity(id: string, extra: Partial<IdentityRecord> = {}): IdentityRecord {
  return {
    id,
    name: `name-${id}`,
    kind: 'user',
    secretHash: `scrypt$${id}`,
    trustedService: false,
    createdAt: new Date(T),
    ...extra,
  };
}

function bucket(extra: Partial<DenialBucket> = {}): DenialBucket {
  return {
    registry: REG,
    minute: new Date(T),
    clientIp: '10.0.0.1',
    reason: 'ipNotAllowed',
    entry: 'public',
    reportOnly: false,
    count: 1,
    firstSeen: new Date(T + 1000),
    lastSeen: new Date(T + 2000),
    samples: [{ method: 'GET', path: '/v2/' }],
    ...extra,
  };
}

const everything = { limit: 1000, seriesSince: new Date(0) };

/** The behaviour every management store must have, on one node and between two nodes racing. */
export function managementStoreContract(name: string, factory: SharedStoreFactory<ManagementStore>): void {
  describe(`management store contract: ${name}`, () => {
    const withStore = (fn: (store: ManagementStore, more: SharedStores<ManagementStore>) => Promise<void>) =>
      withStores(factory, fn);

    it(
      'identities: unique id and name, read by either, listed by name and kind, counted, deleted with roles',
      withStore(async (store) => {
        assert.equal(await store.countIdentities(), 0);
        const key = identity('k1', {
          name: 'ci-key',
          kind: 'apiKey',
          trustedService: true,
          allowedNetworks: ['10.0.0.0/8', '2001:db8::/32'],
        });
        assert.equal(await store.createIdentity(identity('u1', { name: 'zed' })), true);
        assert.equal(await store.createIdentity(key), true);
        assert.equal(await store.createIdentity(identity('u1', { name: 'other' })), false, 'id taken');
        assert.equal(await store.createIdentity(identity('u2', { name: 'zed' })), false, 'name taken');
        assert.deepEqual(await store.getIdentity('k1'), key);
        assert.deepEqual(await store.getIdentity('u1'), identity('u1', { name: 'zed' }));
        assert.equal('allowedNetworks' in (await store.getIdentity('u1'))!, false);
        assert.deepEqual(await store.findIdentityByName('ci-key'), key);
        assert.equal(await store.findIdentityByName('nobody'), undefined);
        assert.equal(await store.getIdentity('nobody'), undefined);
        assert.deepEqual(
          (await store.listIdentities()).map((i) => i.name),
          ['ci-key', 'zed'],
        );
        assert.deepEqual(
          (await store.listIdentities('user')).map((i) => i.id),
          ['u1'],
        );
        assert.deepEqual(
          (await store.listIdentities('apiKey')).map((i) => i.id),
          ['k1'],
        );
        assert.equal(await store.countIdentities(), 2);
        await store.setRole({ principalId: 'k1', registry: '*', role: 'Reader' });
        assert.equal(await store.deleteIdentity('k1'), true);
        assert.equal(await store.deleteIdentity('k1'), false);
        assert.deepEqual(await store.rolesOf('k1'), [], 'its roles went with it');
        assert.equal(await store.countIdentities(), 1);
        assert.equal(await store.createIdentity(identity('k2', { name: 'ci-key' })), true, 'name is free');
      }),
    );

    it(
      'roles: one per principal and registry (set replaces), listed by registry, removed one by one or per registry',
      withStore(async (store) => {
        await store.setRole({ principalId: 'p', registry: 'b', role: 'Reader' });
        await store.setRole({ principalId: 'p', registry: 'a', role: 'Reader' });
        await store.setRole({ principalId: 'p', registry: 'a', role: 'Owner' });
        await store.setRole({ principalId: 'p', registry: '*', role: 'Contributor' });
        await store.setRole({ principalId: 'q', registry: 'a', role: 'Reader' });
        assert.deepEqual(await store.rolesOf('p'), [
          { principalId: 'p', registry: '*', role: 'Contributor' },
          { principalId: 'p', registry: 'a', role: 'Owner' },
          { principalId: 'p', registry: 'b', role: 'Reader' },
        ]);
        assert.equal(await store.removeRole('p', 'b'), true);
        assert.equal(await store.removeRole('p', 'b'), false);
        await store.deleteRolesForRegistry('a');
        assert.deepEqual(await store.rolesOf('p'), [
          { principalId: 'p', registry: '*', role: 'Contributor' },
        ]);
        assert.deepEqual(await store.rolesOf('q'), []);
      }),
    );

    it(
      'denials: counts add per bucket, first/last seen widen, samples merge distinct up to three',
      withStore(async (store) => {
        await store.addDenialCounts([bucket({ count: 5 })]);
        await store.addDenialCounts([
          bucket({
            count: 2,
            firstSeen: new Date(T + 500),
            lastSeen: new Date(T + 1500),
            samples: [
              { method: 'GET', path: '/v2/' },
              { method: 'HEAD', path: '/v2/a' },
              { method: 'GET', path: '/v2/b' },
            ],
          }),
          bucket({ reportOnly: true, count: 3, lastSeen: new Date(T + 3000) }),
        ]);
        await store.addDenialCounts([bucket({ samples: [{ method: 'PUT', path: '/v2/c' }] })]);
        const { buckets } = await store.queryDenials(REG, everything);
        assert.equal(buckets.length, 2);
        assert.deepEqual(buckets[0], bucket({ reportOnly: true, count: 3, lastSeen: new Date(T + 3000) }));
        assert.deepEqual(
          buckets[1],
          bucket({
            count: 8,
            firstSeen: new Date(T + 500),
            lastSeen: new Date(T + 2000),
            samples: [
              { method: 'GET', path: '/v2/' },
              { method: 'HEAD', path: '/v2/a' },
              { method: 'GET', path: '/v2/b' },
            ],
          }),
        );
      }),
    );

    it(
      'denial queries: newest first, by time and address, totals per address, a series per minute and mode',
      withStore(async (store) => {
        await store.addDenialCounts([
          bucket({ count: 4 }),
          bucket({ clientIp: '10.0.0.2', count: 9, lastSeen: new Date(T + 4000) }),
          bucket({ minute: new Date(T + 60_000), count: 2, lastSeen: new Date(T + 61_000) }),
          bucket({
            minute: new Date(T + 60_000),
            reason: 'publicNetworkAccessDisabled',
            reportOnly: true,
            lastSeen: new Date(T + 62_000),
          }),
          bucket({ registry: 'other', count: 100 }),
        ]);
        const result = await store.queryDenials(REG, everything);
        assert.deepEqual(
          result.buckets.map((b) => [b.clientIp, b.minute.getTime() - T, b.count]),
          [
            ['10.0.0.1', 60_000, 1],
            ['10.0.0.1', 60_000, 2],
            ['10.0.0.2', 0, 9],
            ['10.0.0.1', 0, 4],
          ],
        );
        assert.deepEqual(
          result.countsByIp.map((c) => [c.clientIp, c.count, c.lastSeen.getTime() - T]),
          [
            ['10.0.0.2', 9, 4000],
            ['10.0.0.1', 7, 62_000],
          ],
        );
        assert.deepEqual(
          result.timeSeries.map((p) => [p.minute.getTime() - T, p.counts]),
          [
            [0, { ipNotAllowed: 13 }],
            [60_000, { ipNotAllowed: 2, 'reportOnly:publicNetworkAccessDisabled': 1 }],
          ],
        );
        const recent = await store.queryDenials(REG, {
          since: new Date(T + 61_000),
          limit: 10,
          seriesSince: new Date(T + 60_000),
        });
        assert.equal(recent.buckets.length, 2);
        assert.deepEqual(
          recent.timeSeries.map((p) => p.minute.getTime() - T),
          [60_000],
        );
        const one = await store.queryDenials(REG, { ...everything, clientIp: '10.0.0.2' });
        assert.deepEqual(
          one.buckets.map((b) => b.count),
          [9],
        );
        assert.deepEqual(
          one.countsByIp.map((c) => c.clientIp),
          ['10.0.0.2'],
        );
        assert.equal((await store.queryDenials(REG, { ...everything, limit: 1 })).buckets.length, 1);
        await store.deleteDenialsForRegistry(REG);
        assert.deepEqual((await store.queryDenials(REG, everything)).buckets, []);
        assert.equal((await store.queryDenials('other', everything)).buckets.length, 1);
      }),
    );

    it(
      'denials are pruned by age, then whole oldest minutes until the bound holds',
      withStore(async (store) => {
        const buckets: DenialBucket[] = [];
        for (let m = 0; m < 10; m++)
          for (const clientIp of ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
            buckets.push(bucket({ clientIp, minute: new Date(T + m * 60_000) }));
        await store.addDenialCounts(buckets);
        assert.deepEqual(await store.pruneDenials(new Date(T + 2 * 60_000), 1000), { deleted: 6 });
        assert.deepEqual(await store.pruneDenials(new Date(0), 7), { deleted: 18 });
        const left = (await store.queryDenials(REG, everything)).buckets;
        assert.equal(left.length, 6, 'minute 7 would leave 9 > 7 rows, so it went whole');
        assert.ok(left.every((b) => b.minute.getTime() >= T + 8 * 60_000));
        assert.deepEqual(await store.pruneDenials(new Date(0), 7), { deleted: 0 });
      }),
    );

    it(
      'two nodes pruning the denial log at once leave at most the bound, the newest minutes whole',
      withStore(async (store, { node }) => {
        const other = await node();
        const buckets: DenialBucket[] = [];
        for (let m = 0; m < 20; m++)
          for (const clientIp of ['10.0.0.1', '10.0.0.2'])
            buckets.push(bucket({ clientIp, minute: new Date(T + m * 60_000) }));
        await store.addDenialCounts(buckets);
        const [a, b] = await Promise.all([
          store.pruneDenials(new Date(0), 9),
          other.pruneDenials(new Date(0), 9),
        ]);
        const left = (await store.queryDenials(REG, everything)).buckets;
        assert.equal(left.length, 8, 'minutes 16 to 19');
        assert.equal(a.deleted + b.deleted, 32, 'each bucket deleted once');
      }),
    );

    it(
      'IP sets: created at version 0, replaced at the current version only, listed by name, deleted',
      withStore(async (store) => {
        const office = {
          name: 'office',
          ranges: ['10.1.0.0/16', '2001:db8::/48'],
          description: 'HQ',
          createdAt: new Date(T),
        };
        assert.equal(await store.putIpSet(office, 0), true);
        assert.equal(await store.putIpSet(office, 0), false, 'exists');
        assert.deepEqual(await store.getIpSet('office'), { ...office, version: 1 });
        assert.equal(await store.putIpSet({ ...office, ranges: ['10.2.0.0/16'] }, 2), false);
        assert.equal(
          await store.putIpSet({ ...office, ranges: ['10.2.0.0/16'], description: 'new' }, 1),
          true,
        );
        assert.deepEqual(await store.getIpSet('office'), {
          ...office,
          ranges: ['10.2.0.0/16'],
          description: 'new',
          version: 2,
        });
        assert.equal(await store.putIpSet({ ...office, name: 'branch', ranges: [] }, 0), true);
        assert.deepEqual(
          (await store.listIpSets()).map((s) => [s.name, s.version]),
          [
            ['branch', 1],
            ['office', 2],
          ],
        );
        assert.equal(await store.putIpSet({ ...office, name: 'missing' }, 1), false);
        assert.equal(await store.deleteIpSet('office'), true);
        assert.equal(await store.deleteIpSet('office'), false);
        assert.equal(await store.getIpSet('office'), undefined);
      }),
    );

    it(
      'publishes a change event after each write that changed something, and none after one that did not',
      withStore(async (store, { events }) => {
        assert.ok(events, 'the store takes a change feed');
        const take = () => events.splice(0).map((e) => JSON.stringify(e));
        await store.createIdentity(identity('u1'));
        await store.createIdentity(identity('u1'));
        assert.deepEqual(take(), ['{"kind":"identity","id":"u1"}']);
        await store.setRole({ principalId: 'u1', registry: 'a', role: 'Reader' });
        await store.setRole({ principalId: 'u2', registry: 'a', role: 'Owner' });
        await store.removeRole('u2', 'a');
        await store.removeRole('u2', 'a');
        assert.deepEqual(take(), [
          '{"kind":"roles","principalId":"u1"}',
          '{"kind":"roles","principalId":"u2"}',
          '{"kind":"roles","principalId":"u2"}',
        ]);
        await store.setRole({ principalId: 'u2', registry: 'a', role: 'Owner' });
        take();
        await store.deleteRolesForRegistry('a');
        assert.deepEqual(take().sort(), [
          '{"kind":"roles","principalId":"u1"}',
          '{"kind":"roles","principalId":"u2"}',
        ]);
        await store.deleteIdentity('u1');
        await store.deleteIdentity('u1');
        assert.deepEqual(take(), ['{"kind":"identity","id":"u1"}', '{"kind":"roles","principalId":"u1"}']);
        const set = { name: 'office', ranges: ['10.0.0.0/8'], description: '', createdAt: new Date(T) };
        await store.putIpSet(set, 0);
        await store.putIpSet(set, 0);
        await store.putIpSet(set, 1);
        await store.putIpSet(set, 1);
        await store.deleteIpSet('office');
        await store.deleteIpSet('office');
        assert.deepEqual(take(), Array(3).fill('{"kind":"ipSet","name":"office"}'));
        await store.addDenialCounts([bucket()]);
        assert.deepEqual(take(), [], 'the denial log is no cache');
      }),
    );

    it(
      'of many writers on two nodes replacing one IP set at one version, exactly one wins',
      withStore(async (store, { node }) => {
        const other = await node();
        const set = { name: 'office', ranges: ['10.0.0.0/8'], description: '', createdAt: new Date(T) };
        const creates = await Promise.all([store.putIpSet(set, 0), other.putIpSet(set, 0)]);
        assert.deepEqual(creates.sort(), [false, true]);
        const wins = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            (i % 2 ? other : store).putIpSet({ ...set, ranges: [`10.${i}.0.0/16`] }, 1),
          ),
        );
        assert.equal(wins.filter(Boolean).length, 1);
        const stored = await other.getIpSet('office');
        assert.deepEqual([stored!.version, stored!.ranges], [2, [`10.${wins.indexOf(true)}.0.0/16`]]);
      }),
    );

    it(
      'denial counts flushed by two nodes at once add up exactly and lose no sample within the bound',
      withStore(async (store, { node }) => {
        const other = await node();
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 ? other : store).addDenialCounts([
              bucket({ clientIp: '10.0.0.2', count: i + 1 }),
              bucket({
                count: i + 1,
                lastSeen: new Date(T + 2000 + i),
                samples: i < 3 ? [{ method: 'GET', path: `/v2/n${i}` }] : [],
              }),
            ]),
          ),
        );
        const { buckets } = await store.queryDenials(REG, everything);
        assert.deepEqual(buckets.map((b) => [b.clientIp, b.count]).sort(), [
          ['10.0.0.1', 55],
          ['10.0.0.2', 55],
        ]);
        const first = buckets.find((b) => b.clientIp === '10.0.0.1')!;
        assert.equal(first.lastSeen.getTime(), T + 2009);
        // Three distinct samples were offered: every one is kept (the bound is three).
        assert.deepEqual(first.samples.map((s) => s.path).sort(), ['/v2/n0', '/v2/n1', '/v2/n2']);
      }),
    );
  });
}

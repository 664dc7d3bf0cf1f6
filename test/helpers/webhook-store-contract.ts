import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeliveryRecord, WebhookRecord, WebhookStore } from '../../src/store/webhook-types.js';
import { withStores, type SharedStoreFactory, type SharedStores } from './auth-store-contract.js';

const REG = 'contract';

const hook: WebhookRecord = {
  registry: REG,
  name: 'hook1',
  serviceUri: 'http://127.0.0.1:9/x',
  actions: ['push', 'networkDenied'],
  scope: 'app:*',
  customHeaders: { A: 'b', 'X-Two': 'c d' },
  status: 'enabled',
  secret: 's',
  createdAt: new Date(1000),
};

function delivery(id: string, at: number, extra: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    id,
    registry: REG,
    webhook: 'hook1',
    eventId: `e-${id}`,
    action: 'push',
    payload: `{"id":"${id}"}`,
    status: 'pending',
    attempts: 0,
    nextAttemptAt: at,
    lastStatusCode: undefined,
    lastError: undefined,
    createdAt: new Date(at),
    updatedAt: new Date(at),
    ...extra,
  };
}

/** The behaviour every `WebhookStore` must have, on one node and between nodes claiming deliveries. */
export function webhookStoreContract(name: string, factory: SharedStoreFactory<WebhookStore>): void {
  describe(`WebhookStore contract: ${name}`, () => {
    const withStore = (fn: (store: WebhookStore, more: SharedStores<WebhookStore>) => Promise<void>) =>
      withStores(factory, fn);

    it(
      'webhooks: create once, update, list by name, delete with their deliveries',
      withStore(async (store) => {
        assert.equal(await store.createWebhook(hook), true);
        assert.equal(await store.createWebhook({ ...hook, serviceUri: 'http://127.0.0.1:9/y' }), false);
        assert.deepEqual(await store.getWebhook(REG, 'hook1'), hook);
        assert.equal(await store.getWebhook(REG, 'nope'), undefined);
        assert.equal(await store.createWebhook({ ...hook, name: 'a-hook', actions: [] }), true);
        const changed: WebhookRecord = {
          ...hook,
          status: 'disabled',
          serviceUri: 'https://example.test/h',
          actions: ['delete'],
          scope: '',
          customHeaders: {},
          // Neither the secret nor the creation time changes on update.
          secret: 'ignored',
          createdAt: new Date(5),
        };
        assert.equal(await store.updateWebhook(changed), true);
        assert.equal(await store.updateWebhook({ ...hook, name: 'missing' }), false);
        assert.deepEqual(await store.getWebhook(REG, 'hook1'), {
          ...changed,
          secret: 's',
          createdAt: new Date(1000),
        });
        assert.deepEqual(
          (await store.listWebhooks(REG)).map((w) => w.name),
          ['a-hook', 'hook1'],
        );
        await store.enqueue([delivery('d1', 1000)]);
        assert.equal(await store.deleteWebhook(REG, 'hook1'), true);
        assert.equal(await store.deleteWebhook(REG, 'hook1'), false);
        assert.deepEqual(await store.listDeliveries(REG, 'hook1', 10), []);
        assert.deepEqual(await store.claimDue(10_000, 10, 1000), [], 'its queue went with it');
      }),
    );

    it(
      'deleteRegistryWebhooks drops the registry’s webhooks and deliveries only',
      withStore(async (store) => {
        await store.createWebhook(hook);
        await store.createWebhook({ ...hook, registry: 'kept' });
        await store.enqueue([delivery('d1', 1000), delivery('d2', 1000, { registry: 'kept' })]);
        await store.deleteRegistryWebhooks(REG);
        assert.deepEqual(await store.listWebhooks(REG), []);
        assert.equal((await store.listWebhooks('kept')).length, 1);
        assert.deepEqual(
          (await store.claimDue(2000, 10, 1000)).map((d) => d.id),
          ['d2'],
        );
      }),
    );

    it(
      'deliveries: due ones are claimed once, attempts recorded, retried when due again',
      withStore(async (store) => {
        await store.createWebhook(hook);
        await store.enqueue([delivery('d1', 1000), delivery('d2', 5000)]);
        const [claimed] = await store.claimDue(2000, 10, 10_000);
        assert.deepEqual({ ...claimed!, nextAttemptAt: 0 }, { ...delivery('d1', 1000), nextAttemptAt: 0 });
        assert.deepEqual(await store.claimDue(2000, 10, 10_000), [], 'claimed: not handed out twice');
        await store.recordAttempt('d1', {
          status: 'pending',
          nextAttemptAt: 3000,
          statusCode: 500,
          error: 'boom',
        });
        const retry = await store.claimDue(3000, 10, 10_000);
        assert.deepEqual(
          retry.map((d) => [d.id, d.attempts, d.lastStatusCode, d.lastError]),
          [['d1', 1, 500, 'boom']],
        );
        await store.recordAttempt('d1', {
          status: 'delivered',
          nextAttemptAt: 0,
          statusCode: 200,
          error: undefined,
        });
        const log = await store.listDeliveries(REG, 'hook1', 10);
        const d1 = log.find((d) => d.id === 'd1')!;
        assert.deepEqual(
          [d1.status, d1.attempts, d1.lastStatusCode, d1.lastError],
          ['delivered', 2, 200, undefined],
        );
        assert.ok(d1.updatedAt.getTime() > 1000);
        assert.deepEqual(
          (await store.claimDue(6000, 10, 10_000)).map((d) => d.id),
          ['d2'],
        );
        await store.recordAttempt('d2', {
          status: 'failed',
          nextAttemptAt: 0,
          statusCode: undefined,
          error: 'refused',
        });
        assert.deepEqual(await store.claimDue(1e15, 10, 1000), [], 'delivered and failed ones are done');
        // A claim lapses: a delivery whose sender died is handed out again after claimMs.
        await store.enqueue([delivery('d3', 7000)]);
        assert.equal((await store.claimDue(7000, 10, 500)).length, 1);
        assert.equal((await store.claimDue(7499, 10, 500)).length, 0);
        assert.equal((await store.claimDue(7500, 10, 500)).length, 1);
        assert.equal((await store.claimDue(1e15, 1, 500)).length, 1, 'at most limit');
      }),
    );

    it(
      'the delivery log lists newest first, within the limit, and keeps the last 200 finished',
      withStore(async (store) => {
        await store.createWebhook(hook);
        const all = Array.from({ length: 205 }, (_, i) =>
          delivery(`d${String(i).padStart(3, '0')}`, 1000 + i),
        );
        // Two at the same millisecond come out newest-enqueued first.
        all.push(delivery('same-a', 5000), delivery('same-b', 5000));
        await store.enqueue(all);
        assert.deepEqual(
          (await store.listDeliveries(REG, 'hook1', 3)).map((d) => d.id),
          ['same-b', 'same-a', 'd204'],
        );
        const claimed = await store.claimDue(1e15, 1000, 1000);
        assert.equal(claimed.length, 207);
        for (const d of claimed)
          await store.recordAttempt(d.id, {
            status: 'delivered',
            nextAttemptAt: 0,
            statusCode: 204,
            error: undefined,
          });
        const log = await store.listDeliveries(REG, 'hook1', 1000);
        assert.equal(log.length, 200);
        assert.equal(log.at(-1)!.id, 'd007', 'the oldest went');
      }),
    );

    it(
      'two nodes claiming at once never hand out the same delivery',
      withStore(async (store, { node }) => {
        const other = await node();
        await store.createWebhook(hook);
        await store.enqueue(Array.from({ length: 60 }, (_, i) => delivery(`d${i}`, 1000 + i)));
        const claims = await Promise.all(
          Array.from({ length: 12 }, (_, i) => (i % 2 ? other : store).claimDue(2000, 7, 60_000)),
        );
        const ids = claims.flat().map((d) => d.id);
        assert.equal(new Set(ids).size, ids.length, 'no delivery claimed twice');
        assert.equal(ids.length, 60, 'and every due one was claimed');
      }),
    );
  });
}

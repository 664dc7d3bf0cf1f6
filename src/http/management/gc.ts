import type { FastifyRequest } from 'fastify';
import { ManagementError } from '../../errors/management.js';
import type { GarbageCollector, GcReport } from '../../registry/gc.js';
import type { GcRunRecord, GcStore, RetentionPolicy } from '../../store/gc-types.js';
import { registryNameParams } from '../../management/schemas.js';
import type { ManagementContext } from './context.js';

/** What the garbage collection and retention routes need beyond the shared context. */
export interface GcRouteDeps {
  gc: GarbageCollector;
  gcStore: GcStore;
}

type NameRequest = FastifyRequest<{ Params: { name: string } }>;

/** ACR's default when no policy was ever set. */
const DEFAULT_RETENTION_DAYS = 7;

const retentionBody = {
  $id: 'RetentionPolicyPatch',
  type: 'object',
  additionalProperties: false,
  properties: {
    days: { type: 'integer', minimum: 0, maximum: 365 },
    status: { type: 'string', enum: ['enabled', 'disabled'] },
    type: { type: 'string', enum: ['UntaggedManifests'] },
  },
} as const;

/** `POST/GET /api/registries/{name}/gcRuns` and `GET/PATCH …/retentionPolicy`. */
export function registerGcRoutes(ctx: ManagementContext, deps: GcRouteDeps): void {
  const { route } = ctx;

  route({
    method: 'POST',
    url: '/api/registries/:name/gcRuns',
    summary: 'Run garbage collection now (after the retention policy); dryRun reports what would go',
    tag: 'Operations',
    params: registryNameParams,
    responses: { 200: { description: 'The run report' } },
    handler: async (request: FastifyRequest<{ Params: { name: string }; Body?: unknown }>) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Contributor');
      return toView(await deps.gc.run(registry, { dryRun: dryRunOf(request.body) }));
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/gcRuns',
    summary: 'The last garbage collection runs, newest first',
    tag: 'Operations',
    params: registryNameParams,
    responses: { 200: { description: 'Runs' } },
    handler: async (request: NameRequest) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      const runs = await deps.gcStore.listRuns(registry, 50);
      return {
        value: runs.map(toView),
        totalBytesReclaimed: runs.reduce((sum, run) => sum + run.bytesReclaimed, 0),
      };
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/retentionPolicy',
    summary: "The registry's retention policy for untagged manifests",
    tag: 'Operations',
    params: registryNameParams,
    responses: { 200: { description: 'Policy' } },
    handler: async (request: NameRequest) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      return policyView(await deps.gcStore.getRetentionPolicy(registry));
    },
  });

  route({
    method: 'PATCH',
    url: '/api/registries/:name/retentionPolicy',
    summary: 'Change the retention policy (days 0-365, status enabled|disabled)',
    tag: 'Operations',
    params: registryNameParams,
    body: retentionBody,
    responses: { 200: { description: 'Policy' } },
    handler: async (
      request: FastifyRequest<{
        Params: { name: string };
        Body: { days?: number; status?: RetentionPolicy['status'] };
      }>,
    ) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Contributor');
      const current = await deps.gcStore.getRetentionPolicy(registry);
      const policy: RetentionPolicy = {
        days: request.body.days ?? current?.days ?? DEFAULT_RETENTION_DAYS,
        status: request.body.status ?? current?.status ?? 'disabled',
        lastUpdatedTime: new Date(),
      };
      await deps.gcStore.setRetentionPolicy(registry, policy);
      return policyView(policy);
    },
  });
}

/** The optional body `{ "dryRun": boolean }`: an action may also be POSTed without one. */
function dryRunOf(body: unknown): boolean {
  if (body === undefined || body === null) return false;
  const keys = typeof body === 'object' && !Array.isArray(body) ? Object.keys(body) : undefined;
  const dryRun = (body as { dryRun?: unknown }).dryRun;
  if (!keys || keys.some((k) => k !== 'dryRun') || (dryRun !== undefined && typeof dryRun !== 'boolean')) {
    throw new ManagementError('InvalidRequestContent', 'The body may only be { "dryRun": true|false }.', {
      target: 'body',
    });
  }
  return dryRun === true;
}

function policyView(policy: RetentionPolicy | undefined) {
  return {
    type: 'UntaggedManifests',
    days: policy?.days ?? DEFAULT_RETENTION_DAYS,
    status: policy?.status ?? 'disabled',
    lastUpdatedTime: policy?.lastUpdatedTime.toISOString() ?? null,
  };
}

function toView(run: GcRunRecord | GcReport) {
  return { ...run, startedAt: run.startedAt.toISOString(), finishedAt: run.finishedAt.toISOString() };
}

// `berth check-health -n R`: can this machine reach the registry's data plane through its network
// rules? Sends an anonymous `GET /v2/` to the registry's first data endpoint: 200 or 401 means the
// network guard let us through (401 only asks for credentials); 403 DENIED names the address the
// registry saw and why it refused it.

import { isIP } from 'node:net';
import type { Command } from 'commander';
import { ConnectionError, type ProbeResult } from '../../api-client/index.js';
import type { CliDeps, GlobalOptions } from '../context.js';
import { CliError } from '../errors.js';
import { action, leafCommand } from '../options.js';
import { registryNameOption } from './registry.js';

/** The result `check-health` prints. */
export interface HealthReport {
  registry: string;
  dataEndpoint: string;
  status: number | null;
  allowed: boolean;
  message: string;
  code?: string;
  reason?: string;
  /** The address the registry saw (the 403 DENIED detail, or Berth's header on an allowed probe). */
  clientIp?: string;
}

/** Registers `berth check-health`. */
export function registerCheckHealthCommand(program: Command, deps: CliDeps): void {
  leafCommand(program, 'check-health', "Check that this machine can reach a registry's data endpoint.")
    .addOption(registryNameOption())
    .addHelpText('after', '\nExits 1 when the registry refuses this address or cannot be reached.')
    .action(
      action<GlobalOptions & { name: string }>(deps, async (options, ctx) => {
        const endpoints = await ctx.client().getEndpoints(options.name);
        const dataEndpoint = endpoints.dataEndpoints[0];
        if (!dataEndpoint) throw new CliError(`registry '${options.name}' has no data endpoint`);
        const host = registryHost(dataEndpoint, endpoints.loginServer);
        const report = await check(options.name, dataEndpoint, (url) => ctx.probe(url, host ? { host } : {}));
        ctx.print(report, {
          columns: [
            { header: 'REGISTRY', value: (r) => r.registry },
            { header: 'DATA ENDPOINT', value: (r) => r.dataEndpoint },
            { header: 'CLIENT IP', value: (r) => r.clientIp },
            { header: 'ALLOWED', value: (r) => r.allowed },
            { header: 'MESSAGE', value: (r) => r.message },
          ],
        });
        if (!report.allowed) {
          const detail = report.code ? `${report.code}: ${report.message}` : report.message;
          throw new CliError(`${detail}${report.reason ? ` (reason: ${report.reason})` : ''}`);
        }
      }),
    );
}

async function check(
  registry: string,
  dataEndpoint: string,
  probe: (url: string) => Promise<ProbeResult>,
): Promise<HealthReport> {
  let result: ProbeResult;
  try {
    result = await probe(dataEndpoint);
  } catch (error) {
    if (!(error instanceof ConnectionError)) throw error;
    return { registry, dataEndpoint, status: null, allowed: false, message: error.message };
  }
  const base = { registry, dataEndpoint, status: result.status };
  if (result.status === 200 || result.status === 401) {
    const message =
      result.status === 200
        ? 'the registry is reachable from this address'
        : 'the registry is reachable from this address (it asks for credentials)';
    return {
      ...base,
      allowed: true,
      message,
      ...(result.clientAddress ? { clientIp: result.clientAddress } : {}),
    };
  }
  if (result.status === 403 && result.error) {
    const reason = detailField(result.error.detail, 'reason');
    const clientIp = detailField(result.error.detail, 'clientIp');
    return {
      ...base,
      allowed: false,
      code: result.error.code,
      message: result.error.message,
      ...(reason ? { reason } : {}),
      ...(clientIp ? { clientIp } : {}),
    };
  }
  return {
    ...base,
    allowed: false,
    ...(result.error ? { code: result.error.code } : {}),
    message: `unexpected answer ${result.status}${result.error ? `: ${result.error.message}` : ''}`,
  };
}

/**
 * Berth picks the registry by Host. When the data endpoint is a bare address (shared by every
 * registry on the listener), the request must name the registry's login server itself, or it would
 * check the default registry instead.
 */
export function registryHost(dataEndpoint: string, loginServer: string): string | undefined {
  const url = new URL(dataEndpoint);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const bare = isIP(hostname) !== 0 || hostname === 'localhost';
  if (!bare || !loginServer) return undefined;
  return url.port ? `${loginServer}:${url.port}` : loginServer;
}

function detailField(detail: unknown, field: string): string | undefined {
  const value = (detail as Record<string, unknown> | null | undefined)?.[field];
  return typeof value === 'string' ? value : undefined;
}

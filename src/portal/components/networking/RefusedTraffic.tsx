import { useState } from 'preact/hooks';
import { api, ApiError, registryPath } from '../../api';
import type { Denials, NetworkAccessCheck, Registry } from '../../types';
import { formatTime, LoadState, messageOf, Notice, useLoad, Table } from '../common';
import { CONFLICT_MESSAGE, type Versioned } from './Networking';
import { DenialChart } from './DenialChart';
import { canonicalRule } from './rules';

const WINDOWS = { hour: 60 * 60_000, day: 24 * 60 * 60_000 } as const;

/** Refused traffic: refusals over time by reason, the top refused addresses, and a what-if check. */
export function RefusedTraffic(props: {
  versioned: Versioned;
  limit: number;
  onSaved: (v: Versioned) => void;
  onReload: () => void;
}) {
  const { registry } = props.versioned;
  const [window, setWindow] = useState<keyof typeof WINDOWS>('hour');
  const { data, error, loading, reload } = useLoad(async () => {
    const since = new Date(Date.now() - WINDOWS[window]);
    const query = `?since=${encodeURIComponent(since.toISOString())}&limit=10000`;
    const denials = await api<Denials>('GET', `${registryPath(registry.name, 'networkDenials')}${query}`);
    return { denials: denials.body, since };
  }, [registry.name, window]);
  const [message, setMessage] = useState<{ kind: 'error' | 'success' | 'warning'; text: string }>();

  const rules = registry.properties.networkRuleSet?.ipRules ?? [];
  const allow = async (ip: string) => {
    const value = canonicalRule(ip) ?? ip;
    if (rules.length >= props.limit) {
      setMessage({
        kind: 'error',
        text: `The plan allows at most ${props.limit} IP rules; remove one first.`,
      });
      return;
    }
    try {
      const saved = await api<Registry>('PATCH', registryPath(registry.name), {
        body: { properties: { networkRuleSet: { ipRules: [...rules, { action: 'Allow', value }] } } },
        ...(props.versioned.etag ? { ifMatch: props.versioned.etag } : {}),
      });
      props.onSaved({ registry: saved.body, etag: saved.etag });
      const p = saved.body.properties;
      const note =
        p.publicNetworkAccess === 'Disabled'
          ? ' Public network access is disabled, so the rule applies only once it is enabled again.'
          : '';
      setMessage({ kind: note ? 'warning' : 'success', text: `Added a rule allowing ${value}.${note}` });
    } catch (e) {
      const conflict = e instanceof ApiError && e.status === 412;
      setMessage({ kind: 'error', text: conflict ? CONFLICT_MESSAGE : messageOf(e) });
      if (conflict) props.onReload();
    }
  };

  const reasonsByIp = new Map<string, Set<string>>();
  for (const d of data?.denials.value ?? []) {
    const set = reasonsByIp.get(d.clientIp) ?? new Set<string>();
    set.add(d.reason);
    reasonsByIp.set(d.clientIp, set);
  }
  const allowed = new Set(rules.map((r) => r.value));

  return (
    <>
      <section aria-labelledby="chart-heading">
        <div class="section-head">
          <h2 id="chart-heading">Refused requests</h2>
          <label class="inline">
            Time range{' '}
            <select value={window} onChange={(e) => setWindow(e.currentTarget.value as keyof typeof WINDOWS)}>
              <option value="hour">Last hour</option>
              <option value="day">Last 24 hours</option>
            </select>
          </label>
          <button type="button" onClick={reload}>
            Refresh
          </button>
        </div>
        <LoadState loading={loading && !data} error={error} what="refused traffic" />
        {data && <DenialChart denials={data.denials} since={data.since} until={new Date()} />}
      </section>
      <section aria-labelledby="top-heading">
        <h2 id="top-heading">Top refused addresses</h2>
        {message && <Notice kind={message.kind}>{message.text}</Notice>}
        {data && data.denials.countsByIp.length === 0 && <p>Nobody was refused in this time range.</p>}
        {data && data.denials.countsByIp.length > 0 && (
          <Table columns={['Client address', 'Refused', 'Reason', 'Last seen', 'Action']}>
            {[...data.denials.countsByIp]
              .sort((a, b) => b.count - a.count)
              .slice(0, 20)
              .map((c) => {
                const rule = canonicalRule(c.clientIp);
                return (
                  <tr key={c.clientIp}>
                    <td data-label="Client address" class="mono">
                      {c.clientIp}
                    </td>
                    <td data-label="Refused">{c.count}</td>
                    <td data-label="Reason">{[...(reasonsByIp.get(c.clientIp) ?? [])].join(', ')}</td>
                    <td data-label="Last seen">{formatTime(c.lastSeen)}</td>
                    <td data-label="Action">
                      {rule && allowed.has(rule) ? (
                        <span class="muted">Allowed by a rule</span>
                      ) : (
                        <button
                          type="button"
                          onClick={() => allow(c.clientIp)}
                          aria-label={`Allow ${c.clientIp}`}
                        >
                          Allow
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
          </Table>
        )}
      </section>
      <CheckAccess registry={registry.name} />
    </>
  );
}

/** "Would this address be allowed?", answered by the server's own decision (checkNetworkAccess). */
function CheckAccess(props: { registry: string }) {
  const [ip, setIp] = useState('');
  const [answer, setAnswer] = useState<NetworkAccessCheck>();
  const [error, setError] = useState<string>();
  const submit = async (event: Event) => {
    event.preventDefault();
    setAnswer(undefined);
    setError(undefined);
    try {
      const result = await api<NetworkAccessCheck>(
        'POST',
        registryPath(props.registry, 'checkNetworkAccess'),
        {
          body: { ip: ip.trim() },
        },
      );
      setAnswer(result.body);
    } catch (e) {
      setError(messageOf(e));
      document.getElementById('check-ip')?.focus();
    }
  };
  return (
    <section aria-labelledby="check-heading">
      <h2 id="check-heading">Would this address be allowed?</h2>
      <form class="form-row" onSubmit={submit} noValidate>
        <p class="field">
          <label for="check-ip">IP address</label>
          <input
            id="check-ip"
            class="mono"
            value={ip}
            placeholder="203.0.113.7"
            aria-invalid={error ? true : undefined}
            aria-describedby="check-ip-message"
            onInput={(e) => setIp(e.currentTarget.value)}
          />
          <span id="check-ip-message" class={error ? 'field-error' : 'hint'}>
            {error ?? 'Decided exactly as the data plane would decide it now.'}
          </span>
        </p>
        <button type="submit">Check</button>
      </form>
      {answer && (
        <Notice kind={answer.allowed ? 'success' : 'warning'}>
          {answer.allowed
            ? `${answer.ip} would be allowed${answer.matchedRule ? ` by the rule ${answer.matchedRule}` : answer.via ? ` (${answer.via})` : ''}.`
            : `${answer.ip} would be refused (${answer.reason}): ${answer.message}`}
        </Notice>
      )}
    </section>
  );
}

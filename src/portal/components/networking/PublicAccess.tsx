import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, registryPath } from '../../api';
import type { Registry } from '../../types';
import { messageOf, Notice } from '../common';
import { CONFLICT_MESSAGE, isPremium, type Versioned } from './Networking';
import { canonicalRule, checkRules, type RuleRow } from './rules';

type Mode = 'all' | 'selected' | 'disabled';

interface Draft {
  mode: Mode;
  rows: RuleRow[];
  trusted: boolean;
}

let nextRowId = 1;
const row = (value: string): RuleRow => ({ id: nextRowId++, value });

function draftOf(registry: Registry): Draft {
  const p = registry.properties;
  return {
    mode:
      p.publicNetworkAccess === 'Disabled'
        ? 'disabled'
        : p.networkRuleSet?.defaultAction === 'Deny'
          ? 'selected'
          : 'all',
    rows: (p.networkRuleSet?.ipRules ?? []).map((r) => row(r.value)),
    trusted: p.networkRuleBypassOptions !== 'None',
  };
}

/** The Public access tab: who may reach the data plane over the public listeners. */
export function PublicAccess(props: {
  versioned: Versioned;
  limit: number;
  clientIp: string;
  onSaved: (v: Versioned) => void;
  onReload: () => void;
}) {
  const { registry } = props.versioned;
  const premium = isPremium(registry);
  const [draft, setDraft] = useState(() => draftOf(registry));
  const [result, setResult] = useState<{ kind: 'error' | 'success' | 'warning'; text: string[] }>();
  const [showErrors, setShowErrors] = useState(false);
  const [busy, setBusy] = useState(false);
  const inputs = useRef(new Map<number, HTMLInputElement>());
  const focusRow = useRef<number | undefined>(undefined);
  useEffect(() => setDraft(draftOf(registry)), [registry]);
  useEffect(() => {
    if (focusRow.current !== undefined) inputs.current.get(focusRow.current)?.focus();
    focusRow.current = undefined;
  });

  const check = useMemo(() => checkRules(draft.rows, props.limit), [draft.rows, props.limit]);
  const clientRule = canonicalRule(props.clientIp);
  const hasClientIp = draft.rows.some((r) => canonicalRule(r.value) === clientRule);
  const dirty = JSON.stringify(stripIds(draft)) !== JSON.stringify(stripIds(draftOf(registry)));

  const update = (change: Partial<Draft>) => {
    setDraft((d) => ({ ...d, ...change }));
    setResult(undefined);
  };
  const setRow = (id: number, value: string) =>
    update({ rows: draft.rows.map((r) => (r.id === id ? { ...r, value } : r)) });
  const addRow = () => {
    const added = row('');
    focusRow.current = added.id;
    update({ rows: [...draft.rows, added] });
  };
  const removeRow = (id: number) => update({ rows: draft.rows.filter((r) => r.id !== id) });
  const toggleClientIp = (on: boolean) =>
    update({
      rows: on
        ? [...draft.rows, row(props.clientIp)]
        : draft.rows.filter((r) => canonicalRule(r.value) !== clientRule),
    });

  const save = async (event: Event) => {
    event.preventDefault();
    if (draft.mode === 'selected' && !check.valid) {
      setShowErrors(true);
      const index = check.checks.findIndex((c) => c.error !== undefined);
      const bad = draft.rows[index];
      if (bad) inputs.current.get(bad.id)?.focus();
      setResult({ kind: 'error', text: ['Nothing was saved: fix the address ranges marked below.'] });
      return;
    }
    setBusy(true);
    try {
      const ipRules = (
        check.valid ? check.rules : (registry.properties.networkRuleSet?.ipRules ?? []).map((r) => r.value)
      ).map((value) => ({ action: 'Allow' as const, value }));
      const properties = {
        publicNetworkAccess: draft.mode === 'disabled' ? 'Disabled' : 'Enabled',
        networkRuleSet: { defaultAction: draft.mode === 'all' ? 'Allow' : 'Deny', ipRules },
        networkRuleBypassOptions: draft.trusted ? 'AzureServices' : 'None',
      };
      const saved = await api<Registry>('PATCH', registryPath(registry.name), {
        body: { properties },
        ...(props.versioned.etag ? { ifMatch: props.versioned.etag } : {}),
      });
      setShowErrors(false);
      setResult({ kind: saved.warnings.length ? 'warning' : 'success', text: ['Saved.', ...saved.warnings] });
      props.onSaved({ registry: saved.body, etag: saved.etag });
    } catch (e) {
      const conflict = e instanceof ApiError && (e.status === 412 || e.code === 'PreconditionFailed');
      setResult({
        kind: 'error',
        text: [conflict ? CONFLICT_MESSAGE : `Nothing was saved: ${messageOf(e)}`],
      });
    } finally {
      setBusy(false);
    }
  };
  const discard = () => {
    setShowErrors(false);
    setResult(undefined);
    if (result?.kind === 'error') props.onReload();
    else setDraft(draftOf(registry));
  };

  return (
    <form onSubmit={save} noValidate aria-labelledby="public-heading">
      <h2 id="public-heading" class="visually-hidden">
        Public access
      </h2>
      {!premium && (
        <Notice kind="info">
          Network rules need the Premium SKU. This registry is {registry.sku.name}: it is reachable from all
          networks. Change the SKU to Premium to restrict public access or use private endpoints.
        </Notice>
      )}
      {result && (
        <Notice kind={result.kind}>
          {result.text.map((t) => (
            <p key={t}>{t}</p>
          ))}
        </Notice>
      )}
      <fieldset disabled={!premium || busy}>
        <legend>Allow public network access</legend>
        {(
          [
            ['all', 'All networks', 'Anyone who can reach the data plane gets in (credentials still apply).'],
            ['selected', 'Selected networks', 'Only the address ranges below, and private endpoints.'],
            ['disabled', 'Disabled', 'No public access at all; only approved private endpoints.'],
          ] as const
        ).map(([mode, label, hint]) => (
          <label class="radio" key={mode}>
            <input
              type="radio"
              name="mode"
              value={mode}
              checked={draft.mode === mode}
              onChange={() => update({ mode })}
            />
            <span>
              {label} <span class="hint">{hint}</span>
            </span>
          </label>
        ))}
      </fieldset>
      {draft.mode === 'selected' && (
        <fieldset disabled={!premium || busy} class="firewall">
          <legend>Firewall</legend>
          <p class="hint">
            Add IPv4 or IPv6 addresses or CIDR ranges that may reach the registry. The plan allows{' '}
            {props.limit}; {check.rules.length} entered.
          </p>
          <label class="checkbox">
            <input
              type="checkbox"
              checked={hasClientIp}
              onChange={(e) => toggleClientIp(e.currentTarget.checked)}
            />
            Add your client IP address ('{props.clientIp}')
          </label>
          <ul class="rules" aria-label="Address ranges">
            {draft.rows.map((r, index) => {
              const c = check.checks[index] ?? {};
              const error = showErrors || r.value.trim() !== '' ? c.error : undefined;
              const describedBy = `rule-${r.id}-message`;
              return (
                <li key={r.id}>
                  <label for={`rule-${r.id}`} class="visually-hidden">
                    Address range {index + 1}
                  </label>
                  <input
                    id={`rule-${r.id}`}
                    class="mono"
                    ref={(el) => {
                      if (el) inputs.current.set(r.id, el);
                      else inputs.current.delete(r.id);
                    }}
                    value={r.value}
                    placeholder="203.0.113.0/24"
                    aria-invalid={error ? true : undefined}
                    aria-describedby={describedBy}
                    onInput={(e) => setRow(r.id, e.currentTarget.value)}
                    autoComplete="off"
                    spellcheck={false}
                  />
                  <button
                    type="button"
                    onClick={() => removeRow(r.id)}
                    aria-label={`Remove address range ${index + 1}`}
                  >
                    Remove
                  </button>
                  <span id={describedBy} class={error ? 'field-error' : 'hint'}>
                    {error ?? c.notice ?? ''}
                  </span>
                </li>
              );
            })}
          </ul>
          <button type="button" onClick={addRow}>
            Add address range
          </button>
        </fieldset>
      )}
      <fieldset disabled={!premium || busy}>
        <legend>Exceptions</legend>
        <label class="checkbox">
          <input
            type="checkbox"
            checked={draft.trusted}
            onChange={(e) => update({ trusted: e.currentTarget.checked })}
          />
          Allow trusted services to access this registry
        </label>
        <p class="hint">API keys marked as trusted services may bypass these rules.</p>
      </fieldset>
      <div class="actions bar">
        <button type="submit" class="primary" disabled={!premium || busy || !dirty}>
          {busy ? 'Saving…' : 'Save'}
        </button>
        <button
          type="button"
          onClick={discard}
          disabled={!premium || busy || (!dirty && result?.kind !== 'error')}
        >
          Discard
        </button>
      </div>
    </form>
  );
}

function stripIds(draft: Draft) {
  return { ...draft, rows: draft.rows.map((r) => r.value.trim()).filter((v) => v !== '') };
}

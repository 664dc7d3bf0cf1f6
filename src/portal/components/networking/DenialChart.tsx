import type { Denials } from '../../types';
import { BARS, bucketDenials } from './denial-buckets';

const REASON_LABELS: Record<string, string> = {
  ipNotAllowed: 'Address not allowed',
  publicNetworkAccessDisabled: 'Public access disabled',
  privateEndpointNotApproved: 'Private endpoint not approved',
};
const COLORS = ['#c4314b', '#8a6d00', '#5c2d91', '#0063b1', '#3b3b3b'];
/** A stacked bar chart of refusals over time, with a legend that carries the totals (for everyone). */
export function DenialChart(props: { denials: Denials; since: Date; until: Date }) {
  const b = bucketDenials(props.denials, props.since, props.until);
  const totals = b.reasons.map((_, r) => b.counts.reduce((sum, bar) => sum + (bar[r] ?? 0), 0));
  const max = Math.max(1, ...b.counts.map((bar) => bar.reduce((s, n) => s + n, 0)));
  const W = 600;
  const H = 160;
  const barW = W / BARS;
  const summary =
    b.reasons.length === 0
      ? 'No refused requests in this time range.'
      : `Refused requests over time: ${b.reasons.map((r, i) => `${totals[i]} ${label(r).toLowerCase()}`).join(', ')}.`;
  const time = (t: number) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return (
    <figure class="chart">
      <p class="chart-scale">
        <span>Most in one bar: {max}</span>
      </p>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary} preserveAspectRatio="none">
        <line x1={0} y1={H} x2={W} y2={H} class="axis" />
        {b.counts.map((bar, i) => {
          let y = H;
          return bar.map((n, r) => {
            if (n === 0) return null;
            const h = (n / max) * (H - 10);
            y -= h;
            return (
              <rect
                key={`${i}-${r}`}
                x={i * barW + 1}
                y={y}
                width={barW - 2}
                height={h}
                fill={COLORS[r % COLORS.length]}
              >
                <title>{`${time(b.start + i * b.width)}: ${n} ${label(b.reasons[r]!)}`}</title>
              </rect>
            );
          });
        })}
      </svg>
      <p class="chart-axis" aria-hidden="true">
        <span>{time(b.start)}</span>
        <span>{time(b.start + BARS * b.width)}</span>
      </p>
      <figcaption>
        {b.reasons.length === 0 ? (
          summary
        ) : (
          <ul class="legend">
            {b.reasons.map((r, i) => (
              <li key={r}>
                <span class={`swatch swatch-${i % COLORS.length}`} aria-hidden="true" />
                {label(r)}: <strong>{totals[i]}</strong>
              </li>
            ))}
          </ul>
        )}
      </figcaption>
    </figure>
  );
}

function label(reason: string): string {
  return REASON_LABELS[reason] ?? reason;
}

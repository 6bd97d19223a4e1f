/** A row of numbers as a small bar chart (no axes): its shape, not its values. */
export function Sparkline({ values, label, width = 120, height = 24 }: { values: readonly number[]; label: string; width?: number; height?: number }) {
  const max = Math.max(1, ...values);
  const step = width / Math.max(1, values.length);
  return (
    <svg className="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
      {values.map((value, i) =>
        value > 0 ? <rect key={i} x={i * step} width={Math.max(1, step - 0.5)} y={height - (value / max) * height} height={(value / max) * height} /> : null,
      )}
      <line x1={0} x2={width} y1={height - 0.5} y2={height - 0.5} />
    </svg>
  );
}

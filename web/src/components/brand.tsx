/** The ETP mark: a trace over a tile, drawn inline (no image request, nothing for the CSP to allow). */
export function Brand({ large = false }: { large?: boolean }) {
  return (
    <div className={large ? "brand brand-large" : "brand"}>
      <svg className="brand-mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
        <rect width="32" height="32" rx="7" />
        <path d="M6 22l6-8 5 5 4-7 5 10" />
      </svg>
      <span>ETP</span>
    </div>
  );
}

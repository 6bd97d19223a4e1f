import { useState } from "react";

export function CopyButton({ value, label = "Copy", compact = false }: { value: string; label?: string; compact?: boolean }) {
  const [copied, setCopied] = useState(false);
  async function copy() {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      setCopied(false);
    }
  }
  return (
    <button type="button" className={compact ? "btn btn-ghost btn-xs" : "btn btn-secondary"} onClick={copy} aria-label={label}>
      {copied ? "Copied" : compact ? "Copy" : label}
    </button>
  );
}

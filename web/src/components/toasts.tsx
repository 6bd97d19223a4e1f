// The toast viewport: one live region; an error shows its request_id with a copy button.
import { useSyncExternalStore } from "react";

import { toasts as defaultStore, type ToastStore } from "../lib/toast-store";
import { CopyButton } from "./copy-button";

export function Toasts({ store = defaultStore }: { store?: ToastStore }) {
  const items = useSyncExternalStore(store.subscribe, store.snapshot);
  return (
    <section className="toasts" aria-live="polite" aria-label="Notifications">
      {items.map((toast) => (
        <div key={toast.id} className={`toast toast-${toast.tone}`} role={toast.tone === "error" ? "alert" : "status"}>
          <div className="toast-body">
            <strong className="toast-title">{toast.title}</strong>
            {toast.detail ? <p className="toast-detail">{toast.detail}</p> : null}
            {toast.requestId ? (
              <p className="toast-request">
                <span>request_id</span> <code data-testid="request-id">{toast.requestId}</code>
                <CopyButton value={toast.requestId} label="Copy request id" compact />
              </p>
            ) : null}
          </div>
          <button type="button" className="toast-close" aria-label="Dismiss notification" onClick={() => store.dismiss(toast.id)}>
            ×
          </button>
        </div>
      ))}
    </section>
  );
}

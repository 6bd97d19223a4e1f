// The toasts on screen, outside React: the query cache reports failed calls here, components
// read it through useSyncExternalStore.
import { ApiError, describe } from "./problem";

export type ToastTone = "error" | "success" | "info";

export interface Toast {
  id: number;
  tone: ToastTone;
  title: string;
  detail?: string;
  requestId?: string | null;
}

export type NewToast = Omit<Toast, "id">;

const MAX_TOASTS = 5;
const SUCCESS_MS = 3000;

export function toastOfError(error: unknown, title?: string): NewToast {
  if (error instanceof ApiError) {
    const code = error.code === "http_error" || error.code === "network" ? "" : ` (${error.code})`;
    return { tone: "error", title: title ?? error.title, detail: `${describe(error)}${code}`, requestId: error.requestId };
  }
  return { tone: "error", title: title ?? "Something went wrong", detail: String(error) };
}

export class ToastStore {
  private toasts: readonly Toast[] = [];
  private nextId = 1;
  private readonly listeners = new Set<() => void>();

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  snapshot = (): readonly Toast[] => this.toasts;

  show(toast: NewToast): number {
    const id = this.nextId++;
    this.set([...this.toasts.slice(-(MAX_TOASTS - 1)), { ...toast, id }]);
    // Errors stay until dismissed: their request_id may be needed.
    if (toast.tone !== "error") {
      setTimeout(() => this.dismiss(id), SUCCESS_MS);
    }
    return id;
  }

  error(error: unknown, title?: string): number {
    return this.show(toastOfError(error, title));
  }

  success(title: string, detail?: string): number {
    return this.show({ tone: "success", title, ...(detail ? { detail } : {}) });
  }

  dismiss(id: number): void {
    this.set(this.toasts.filter((toast) => toast.id !== id));
  }

  private set(toasts: readonly Toast[]): void {
    this.toasts = toasts;
    this.listeners.forEach((listener) => listener());
  }
}

export const toasts = new ToastStore();

import { act, fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { ToastStore } from "../lib/toast-store";
import { Toasts } from "./toasts";

describe("Toasts", () => {
  it("shows an error with its request id until dismissed", () => {
    const store = new ToastStore();
    render(<Toasts store={store} />);

    act(() => {
      store.show({ tone: "error", title: "Forbidden", detail: "This needs the editor role.", requestId: "abc123" });
    });

    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("Forbidden");
    expect(screen.getByTestId("request-id").textContent).toBe("abc123");
    fireEvent.click(screen.getByRole("button", { name: "Dismiss notification" }));
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("keeps at most five", () => {
    const store = new ToastStore();
    for (let i = 0; i < 8; i++) store.show({ tone: "error", title: `e${i}` });
    expect(store.snapshot().map((toast) => toast.title)).toEqual(["e3", "e4", "e5", "e6", "e7"]);
  });
});

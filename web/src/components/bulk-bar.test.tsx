import { fireEvent, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";

import { ApiError } from "../lib/problem";
import { renderWithApp } from "../test/render";
import { BulkBar } from "./bulk-bar";

const ITEMS = [
  { id: "r1", name: "run-1" },
  { id: "r2", name: "run-2" },
];
const STATUSES = [{ status: "succeeded", label: "Mark succeeded" }] as const;

describe("BulkBar", () => {
  it("shows each item that refused the status, and why; nothing changed", async () => {
    const refusal = new ApiError({
      status: 409,
      code: "batch_failed",
      title: "Conflict",
      itemErrors: [{ id: "r1", code: "invalid_transition", detail: "A run cannot go from draft to succeeded." }],
    });
    const apply = vi.fn(() => Promise.reject(refusal));
    const onDone = vi.fn();
    renderWithApp(<BulkBar noun="run" selected={ITEMS} statuses={STATUSES} apply={apply} busy={false} onDone={onDone} />);

    fireEvent.change(screen.getByLabelText("New status"), { target: { value: "succeeded" } });
    fireEvent.click(screen.getByRole("button", { name: "Apply status" }));

    expect((await screen.findByTestId("bulk-refused-run-1")).textContent).toBe("run-1: A run cannot go from draft to succeeded.");
    expect(screen.getByRole("status").textContent).toContain("Nothing changed: 1 of 2 runs cannot take it.");
    expect(screen.queryByTestId("bulk-refused-run-2")).toBeNull();
    expect(apply).toHaveBeenCalledWith(["r1", "r2"], { kind: "status", status: "succeeded" });
    expect(onDone).not.toHaveBeenCalled();
  });

  it("adds the typed tags to every selected item", async () => {
    const apply = vi.fn(() => Promise.resolve({ items: [] }));
    const onDone = vi.fn();
    renderWithApp(<BulkBar noun="experiment" selected={ITEMS} statuses={STATUSES} apply={apply} busy={false} onDone={onDone} />);

    fireEvent.change(screen.getByLabelText("Tags to add or remove"), { target: { value: "rev2, gusty" } });
    fireEvent.click(screen.getByRole("button", { name: "Add tags" }));

    await waitFor(() => expect(onDone).toHaveBeenCalled());
    expect(apply).toHaveBeenCalledWith(["r1", "r2"], { kind: "tags", add: ["rev2", "gusty"], remove: [] });
  });
});

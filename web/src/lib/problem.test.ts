import { describe, expect, it } from "vitest";

import { describe as describeError, fieldError, problemFromResponse } from "./problem";
import { toastOfError } from "./toast-store";

describe("problemFromResponse", () => {
  it("reads an RFC 9457 problem with its request id and field errors", () => {
    const response = new Response(null, { status: 422, headers: { "X-Request-Id": "from-header" } });
    const error = problemFromResponse(response, {
      type: "about:blank",
      title: "Unprocessable Content",
      status: 422,
      code: "validation_failed",
      detail: "The body is not valid.",
      request_id: "3f6c2a9e0b8d4e1f",
      errors: [{ in: "body", field: "name", message: "Field required", type: "missing" }],
    });

    expect(error.status).toBe(422);
    expect(error.code).toBe("validation_failed");
    expect(error.requestId).toBe("3f6c2a9e0b8d4e1f");
    expect(fieldError(error, "name")).toBe("Field required");
    expect(describeError(error)).toBe("The body is not valid. · name: Field required");
  });

  it("reads the failing items of a batch apart from field errors", () => {
    const error = problemFromResponse(new Response(null, { status: 409 }), {
      title: "Conflict",
      status: 409,
      code: "batch_failed",
      detail: "1 of the runs cannot take the change; nothing changed.",
      errors: [{ run_id: "r1", code: "invalid_transition", detail: "A run cannot go from draft to succeeded." }],
    });

    expect(error.itemErrors).toEqual([{ id: "r1", code: "invalid_transition", detail: "A run cannot go from draft to succeeded." }]);
    expect(error.fieldErrors).toEqual([]);
  });

  it("falls back to the status and the X-Request-Id header for a body that is no problem", () => {
    const response = new Response(null, { status: 502, statusText: "Bad Gateway", headers: { "X-Request-Id": "abc" } });
    const error = problemFromResponse(response, "<html>proxy error</html>");

    expect(error.status).toBe(502);
    expect(error.title).toBe("Bad Gateway");
    expect(error.requestId).toBe("abc");
  });

  it("makes a toast that carries the code and the request id", () => {
    const error = problemFromResponse(new Response(null, { status: 403 }), {
      title: "Forbidden",
      status: 403,
      code: "forbidden",
      detail: "This needs the editor role; you are viewer.",
      request_id: "r1",
    });

    expect(toastOfError(error)).toEqual({
      tone: "error",
      title: "Forbidden",
      detail: "This needs the editor role; you are viewer. (forbidden)",
      requestId: "r1",
    });
  });
});

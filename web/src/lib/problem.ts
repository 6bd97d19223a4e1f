// A failed API call as the UI sees it: the RFC 9457 problem the services answer (with the
// request_id a lab can quote to whoever reads the logs), or a network failure (status 0).

export interface FieldError {
  in: string;
  field: string;
  message: string;
}

/** One item of a batch that could not take the change (`batch_failed`: the run or experiment, and why). */
export interface ItemError {
  id: string;
  code: string;
  detail: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly requestId: string | null;
  readonly fieldErrors: readonly FieldError[];
  readonly itemErrors: readonly ItemError[];

  constructor(init: {
    status: number;
    code: string;
    title: string;
    detail?: string;
    requestId?: string | null;
    fieldErrors?: readonly FieldError[];
    itemErrors?: readonly ItemError[];
  }) {
    super(init.detail || init.title);
    this.name = "ApiError";
    this.status = init.status;
    this.code = init.code;
    this.title = init.title;
    this.detail = init.detail ?? "";
    this.requestId = init.requestId ?? null;
    this.fieldErrors = init.fieldErrors ?? [];
    this.itemErrors = init.itemErrors ?? [];
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The error of a non-2xx answer: its problem+json body when it has one, else what the status says. */
export function problemFromResponse(response: Response, body: unknown): ApiError {
  const requestId = response.headers.get("X-Request-Id");
  if (!isRecord(body)) {
    return new ApiError({
      status: response.status,
      code: "http_error",
      title: response.statusText || `HTTP ${response.status}`,
      detail: typeof body === "string" ? body.slice(0, 300) : "",
      requestId,
    });
  }
  const errors = Array.isArray(body["errors"]) ? body["errors"].filter(isRecord) : [];
  const fieldErrors = errors
    .filter((item) => "field" in item)
    .map((item) => ({ in: String(item["in"] ?? ""), field: String(item["field"] ?? ""), message: String(item["message"] ?? "") }));
  const itemErrors = errors
    .map((item) => ({ item, id: item["run_id"] ?? item["experiment_id"] }))
    .filter(({ id }) => typeof id === "string")
    .map(({ item, id }) => ({ id: String(id), code: String(item["code"] ?? ""), detail: String(item["detail"] ?? "") }));
  return new ApiError({
    status: typeof body["status"] === "number" ? body["status"] : response.status,
    code: text(body["code"]) ?? "http_error",
    title: text(body["title"]) ?? (response.statusText || `HTTP ${response.status}`),
    detail: text(body["detail"]) ?? "",
    requestId: text(body["request_id"]) ?? requestId,
    fieldErrors,
    itemErrors,
  });
}

export function networkError(cause: unknown): ApiError {
  return new ApiError({
    status: 0,
    code: "network",
    title: "The server cannot be reached",
    detail: cause instanceof Error ? cause.message : String(cause),
  });
}

/** The message a person reads: the problem's detail with each field's complaint. */
export function describe(error: ApiError): string {
  const fields = error.fieldErrors.map((item) => `${item.field}: ${item.message}`);
  return [error.detail || error.title, ...fields].join(" · ");
}

/** The message of a 422 for one field (the last segment of its path), if the error has one. */
export function fieldError(error: unknown, field: string): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const match = error.fieldErrors.find((item) => item.field === field || item.field.endsWith(`.${field}`));
  return match?.message;
}

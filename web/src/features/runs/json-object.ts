/** A JSON object typed into a form: `{}` when blank, else an error message when it is not an object. */
export function parseJsonObject(text: string): { value: Record<string, unknown> } | { error: string } {
  if (text.trim() === "") return { value: {} };
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return { error: "Give a JSON object, e.g. {\"lr\": 0.001}." };
    }
    return { value: value as Record<string, unknown> };
  } catch (error) {
    return { error: `Not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}

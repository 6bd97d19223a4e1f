// A conversion profile as the form holds it (text the user types) and as the API takes it.
import type { Schemas } from "../../../lib/api";

export type ProfileKind = Schemas["ConversionKind"];
export type Payload = Schemas["ConversionPayload"];

export interface ProfileForm {
  kind: ProfileKind;
  /** linear: physical = a·raw + b */
  a: string;
  b: string;
  /** polynomial: c0, c1, …, cn */
  coefficients: string;
  /** table: one "x, y" pair per line */
  points: string;
  extrapolate: boolean;
}

export const EMPTY_FORM: ProfileForm = { kind: "linear", a: "1", b: "0", coefficients: "0, 1", points: "0, 0\n1, 1", extrapolate: false };

export const MAX_DEGREE = 5;

/** A kind with its payload, as the API's bodies take them. */
export type Conversion =
  | { kind: "linear"; payload: Schemas["LinearPayload"] }
  | { kind: "polynomial"; payload: Schemas["PolynomialPayload"] }
  | { kind: "table"; payload: Schemas["TablePayload"] };

export type Parsed = { conversion: Conversion; error: null } | { conversion: null; error: string };

/** A finite number typed by a person ("1e3", " -2.5 "); null for anything else. */
export function parseNumber(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : null;
}

/** "1, 2 3;4" → [1, 2, 3, 4]; null when any part is not a number. */
export function parseNumbers(text: string): number[] | null {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  const values = parts.map(parseNumber);
  return values.some((value) => value === null) ? null : (values as number[]);
}

/** The payload the form describes, or what is wrong with it (the service checks it again). */
export function payloadOf(form: ProfileForm): Parsed {
  const fail = (error: string): Parsed => ({ conversion: null, error });
  if (form.kind === "linear") {
    const a = parseNumber(form.a);
    const b = form.b.trim() === "" ? 0 : parseNumber(form.b);
    if (a === null) return fail("The slope a must be a number.");
    if (b === null) return fail("The offset b must be a number.");
    return { conversion: { kind: "linear", payload: { a, b } }, error: null };
  }
  if (form.kind === "polynomial") {
    const coefficients = parseNumbers(form.coefficients);
    if (!coefficients || coefficients.length === 0) return fail("Give the coefficients c0, c1, … as numbers.");
    if (coefficients.length > MAX_DEGREE + 1) return fail(`At most ${MAX_DEGREE + 1} coefficients (degree ${MAX_DEGREE}).`);
    return { conversion: { kind: "polynomial", payload: { coefficients } }, error: null };
  }
  const points: { x: number; y: number }[] = [];
  for (const [index, line] of form.points.split("\n").entries()) {
    if (line.trim() === "") continue;
    const pair = parseNumbers(line);
    if (!pair || pair.length !== 2) return fail(`Line ${index + 1}: write one "x, y" pair.`);
    const [x, y] = pair as [number, number];
    const last = points.at(-1);
    if (last && x <= last.x) return fail(`Line ${index + 1}: x must grow from line to line.`);
    points.push({ x, y });
  }
  if (points.length < 2) return fail("A table needs at least two points.");
  return { conversion: { kind: "table", payload: { points, extrapolate: form.extrapolate } }, error: null };
}

const number = (value: number) => String(Number(value.toPrecision(6)));

/** "y = 2.5·x − 1", "y = 1 + 2·x²", "table of 3 points, clamped": a profile on one line. */
export function describeProfile(kind: ProfileKind, payload: Payload | null): string {
  if (payload === null) return `${kind} (hidden: raw values are not shown to you)`;
  if ("a" in payload) {
    const b = payload.b ?? 0;
    return `y = ${number(payload.a)}·x${b === 0 ? "" : ` ${b < 0 ? "−" : "+"} ${number(Math.abs(b))}`}`;
  }
  if ("coefficients" in payload) {
    const powers = ["", "·x", "·x²", "·x³", "·x⁴", "·x⁵"];
    const terms = payload.coefficients.flatMap((c, i) => (c === 0 ? [] : [`${number(c)}${powers[i]}`]));
    return `y = ${terms.length ? terms.join(" + ").replaceAll("+ -", "− ") : "0"}`;
  }
  return `table of ${payload.points.length} points, ${payload.extrapolate ? "extrapolated" : "clamped"} outside`;
}

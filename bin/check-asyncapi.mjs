#!/usr/bin/env node
// Validates an AsyncAPI document with the AsyncAPI parser (its schema and its default rules,
// references into public.yaml resolved): prints every finding and exits 1 on any error or
// warning. Usage: node bin/check-asyncapi.mjs [openapi/asyncapi.yaml]
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";

import { DiagnosticSeverity, Parser } from "@asyncapi/parser";

const path = resolve(process.argv[2] ?? "openapi/asyncapi.yaml");
const { document, diagnostics } = await new Parser().parse(await readFile(path, "utf8"), {
  source: path,
});

const severities = { 0: "error", 1: "warning", 2: "info", 3: "hint" };
for (const { severity, code, message, path: where } of diagnostics) {
  console.log(`${severities[severity]} ${code} at ${where.join(".") || "/"}: ${message}`);
}
const failing = diagnostics.filter(
  ({ severity }) => severity === DiagnosticSeverity.Error || severity === DiagnosticSeverity.Warning,
);
if (document === undefined || failing.length > 0) {
  console.error(`${path}: not a valid AsyncAPI document (${failing.length} problem(s))`);
  process.exit(1);
}
const channels = document.channels().all().map((channel) => channel.id());
const messages = document.messages().all().length;
console.log(
  `${path}: valid AsyncAPI ${document.version()} (${channels.length} channels: ` +
    `${channels.join(", ")}; ${messages} messages)`,
);

// The TypeScript SDK against a running ETP (`make sdk-smoke`; ETP_URL, default the gateway of
// `make run`): register, log in, create an API key, then with the key create a project, an
// experiment, a run and a sensor; send a telemetry batch with the sensor's token and read the
// history back. Exits 1 with the failed step on any surprise.
import { randomUUID } from "node:crypto";

import { createEtpClient } from "@etp/client";

const baseUrl = process.env["ETP_URL"] ?? "http://127.0.0.1:8000";
const LANGUAGE = "typescript";

class StepFailed extends Error {}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

async function step<T>(name: string, call: Promise<Answer<T>>, status: number): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await call;
  } catch (error) {
    throw new StepFailed(`${name}: no answer from ${baseUrl} (${String(error)})`);
  }
  const { data, error, response } = answer;
  if (response.status !== status || data === undefined) {
    const body = error === undefined ? "" : ` ${JSON.stringify(error)}`;
    throw new StepFailed(`${name}: expected ${status}, got ${response.status}${body}`);
  }
  return data;
}

function check(name: string, condition: boolean, detail: unknown): void {
  if (!condition) {
    throw new StepFailed(`${name}: ${JSON.stringify(detail)}`);
  }
}

async function main(): Promise<void> {
  const anonymous = createEtpClient({ baseUrl });
  const username = `sdk-ts-${randomUUID().slice(0, 12)}`;
  const password = "sdk smoke password";

  await step(
    "register",
    anonymous.POST("/api/v1/auth/register", {
      body: { username, email: `${username}@example.org`, password },
    }),
    201,
  );
  const tokens = await step(
    "login",
    anonymous.POST("/api/v1/auth/login", { body: { username, password } }),
    200,
  );
  const user = createEtpClient({ baseUrl, token: tokens.access_token });
  const apiKey = await step(
    "create API key",
    user.POST("/api/v1/api-keys", { body: { name: "sdk smoke" } }),
    201,
  );
  const key = apiKey.key ?? "";
  check("API key format", key.startsWith("etpk_"), apiKey.preview);

  const etp = createEtpClient({ baseUrl, token: key });
  const project = await step(
    "create project",
    etp.POST("/api/v1/projects", { body: { name: `SDK smoke ${LANGUAGE}` } }),
    201,
  );
  const experiment = await step(
    "create experiment",
    etp.POST("/api/v1/experiments", { body: { project_id: project.id, name: "Wind tunnel" } }),
    201,
  );
  const run = await step(
    "create run",
    etp.POST("/api/v1/experiments/{experiment_id}/runs", {
      params: { path: { experiment_id: experiment.id } },
      body: { name: "run 1", params: { speed: 12.5 } },
    }),
    201,
  );
  check("run belongs to the experiment", run.experiment_id === experiment.id, run);
  const sensor = await step(
    "create sensor",
    etp.POST("/api/v1/sensors", {
      body: {
        project_id: project.id,
        name: "thermocouple",
        type: "thermocouple",
        input_unit: "mV",
        display_unit: "K",
        conversion_profile: { version: "v1", kind: "linear", payload: { a: 2, b: 1 } },
      },
    }),
    201,
  );
  const sensorToken = sensor.token ?? "";
  check("sensor token", sensorToken.startsWith("etps_"), sensor.token_preview);

  const device = createEtpClient({ baseUrl, token: sensorToken });
  // After the sensor's profile took effect (now), so every reading gets a physical value.
  const start = Date.now() + 1000;
  const readings = [1.5, 2.5, 4].map((raw_value, i) => ({
    timestamp: new Date(start + i * 1000).toISOString(),
    raw_value,
  }));
  const accepted = await step(
    "send telemetry",
    device.POST("/api/v1/telemetry", {
      body: { sensor_id: sensor.id, batch_id: "sdk-smoke-1", readings },
    }),
    202,
  );
  check("batch accepted whole", accepted.accepted === readings.length, accepted);

  const history = await step(
    "read telemetry history",
    etp.GET("/api/v1/telemetry", { params: { query: { sensor_id: [sensor.id] } } }),
    200,
  );
  const got = history.items.map((item) => [item.raw_value, item.physical_value]);
  const wanted = readings.map((reading) => [reading.raw_value, 2 * reading.raw_value + 1]);
  check("history values", JSON.stringify(got) === JSON.stringify(wanted), { got, wanted });
  const times = history.items.map((item) => Date.parse(item.timestamp));
  check("history timestamps", times.every((t, i) => t === start + i * 1000), times);

  console.log(
    `sdk smoke (${LANGUAGE}): OK against ${baseUrl}: user ${username}, run ${run.id}, ` +
      `${history.items.length} readings read back`,
  );
}

main().catch((error: unknown) => {
  const message = error instanceof StepFailed ? error.message : String(error);
  console.error(`sdk smoke (${LANGUAGE}) FAILED: ${message}`);
  process.exit(1);
});

/** Every URL of the portal; each can be shared and reloaded (the gateway answers index.html). */
export const paths = {
  signIn: "/signin",
  register: "/register",
  projects: "/projects",
  project: (projectId: string) => `/projects/${projectId}`,
  experiments: (projectId: string) => `/projects/${projectId}/experiments`,
  experiment: (projectId: string, experimentId: string) => `/projects/${projectId}/experiments/${experimentId}`,
  run: (projectId: string, runId: string) => `/projects/${projectId}/runs/${runId}`,
  members: (projectId: string) => `/projects/${projectId}/members`,
  sensors: (projectId: string) => `/projects/${projectId}/sensors`,
  sensor: (projectId: string, sensorId: string) => `/projects/${projectId}/sensors/${sensorId}`,
  monitor: (projectId: string, runId?: string) => `/projects/${projectId}/monitor${runId ? `?run=${runId}` : ""}`,
};

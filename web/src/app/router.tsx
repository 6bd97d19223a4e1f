import { createBrowserRouter, Navigate } from "react-router";

import { paths } from "./paths";
import { RequireSession } from "./require-session";
import { Shell } from "./shell";
import { ExperimentRoute } from "./routes/experiment";
import { ExperimentsRoute } from "./routes/experiments";
import { HomeRoute } from "./routes/home";
import { MembersRoute } from "./routes/members";
import { MonitorRoute } from "./routes/monitor";
import { NotFoundRoute } from "./routes/not-found";
import { ProjectLayout } from "./routes/project-layout";
import { ProjectsRoute } from "./routes/projects";
import { RegisterRoute, SignInRoute } from "./routes/sign-in";
import { RunRoute } from "./routes/run";
import { SensorRoute } from "./routes/sensor";
import { SensorsRoute } from "./routes/sensors";

export function createAppRouter() {
  return createBrowserRouter([
    { path: paths.signIn, element: <SignInRoute /> },
    { path: paths.register, element: <RegisterRoute /> },
    {
      element: <RequireSession />,
      children: [
        {
          element: <Shell />,
          children: [
            { index: true, element: <HomeRoute /> },
            { path: paths.projects, element: <ProjectsRoute /> },
            {
              path: "/projects/:projectId",
              element: <ProjectLayout />,
              children: [
                { index: true, element: <Navigate to="experiments" replace /> },
                { path: "experiments", element: <ExperimentsRoute /> },
                { path: "experiments/:experimentId", element: <ExperimentRoute /> },
                { path: "runs/:runId", element: <RunRoute /> },
                { path: "members", element: <MembersRoute /> },
                { path: "sensors", element: <SensorsRoute /> },
                { path: "sensors/:sensorId", element: <SensorRoute /> },
                { path: "monitor", element: <MonitorRoute /> },
              ],
            },
            { path: "*", element: <NotFoundRoute /> },
          ],
        },
      ],
    },
  ]);
}

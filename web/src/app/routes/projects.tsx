import { useState } from "react";
import { useNavigate } from "react-router";

import { Button, PageHeader } from "../../components/ui";
import { CreateProjectDialog, ProjectsList } from "../../features/projects";
import { toasts } from "../../lib/toast-store";
import { paths } from "../paths";

export function ProjectsRoute() {
  const [creating, setCreating] = useState(false);
  const navigate = useNavigate();
  return (
    <div className="page">
      <PageHeader
        title="Projects"
        actions={
          <Button variant="primary" onClick={() => setCreating(true)}>
            New project
          </Button>
        }
      >
        <p className="lead">A project holds experiments, sensors and the people who work on them.</p>
      </PageHeader>
      <ProjectsList projectPath={paths.experiments} />
      <CreateProjectDialog
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(project) => {
          setCreating(false);
          toasts.success(`Project ${project.name} created`);
          navigate(paths.experiments(project.id));
        }}
      />
    </div>
  );
}

import { useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";

import { PageHeader } from "../../components/ui";
import { meKey } from "../../features/auth";
import { MembersPanel, projectKeys } from "../../features/projects";
import { toasts } from "../../lib/toast-store";
import { paths } from "../paths";
import { useSignedIn } from "../require-session";
import { useProjectContext } from "./project-layout";

export function MembersRoute() {
  const { project, canManage } = useProjectContext();
  const me = useSignedIn();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  return (
    <div className="page">
      <PageHeader eyebrow={project.name} title="Members">
        <p className="lead">{canManage ? "As an owner you add people, change their roles and remove them." : "Owners manage members; you can leave the project."}</p>
      </PageHeader>
      <MembersPanel
        projectId={project.id}
        myUserId={me.id}
        canManage={canManage}
        onLeft={() => {
          toasts.success(`You left ${project.name}`);
          void queryClient.invalidateQueries({ queryKey: meKey });
          queryClient.removeQueries({ queryKey: projectKeys.one(project.id) });
          void queryClient.invalidateQueries({ queryKey: projectKeys.all, exact: true });
          navigate(paths.projects);
        }}
      />
    </div>
  );
}

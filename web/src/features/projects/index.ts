export { permissions, projectKeys, useMembers, useProject, useProjects, type Project, type Role } from "./api";
export { CreateProjectDialog } from "./components/create-project-dialog";
export { MembersPanel } from "./components/members-panel";
export { ProjectSwitcher } from "./components/project-switcher";
export { ProjectsList } from "./components/projects-list";

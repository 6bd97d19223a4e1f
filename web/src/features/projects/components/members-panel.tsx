import { useState, type FormEvent } from "react";

import { Button, Empty, Field, Input, Loading, Select, StatusBadge } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { toasts } from "../../../lib/toast-store";
import { useAddMember, useMembers, useRemoveMember, useUpdateMember, type Role } from "../api";

const ROLES: readonly Role[] = ["owner", "editor", "viewer"];
const ROLE_HELP: Record<Role, string> = {
  owner: "everything, including members and deletes",
  editor: "creates and changes experiments, runs, sensors",
  viewer: "reads",
};

export function MembersPanel({
  projectId,
  myUserId,
  canManage,
  onLeft,
}: {
  projectId: string;
  myUserId: string;
  canManage: boolean;
  onLeft: () => void;
}) {
  const members = useMembers(projectId);
  const update = useUpdateMember(projectId);
  const remove = useRemoveMember(projectId);

  if (members.isPending) return <Loading />;
  if (members.isError) return <Empty title="Members could not be loaded." />;
  const items = members.data.items;

  return (
    <div className="stack">
      {canManage ? <AddMemberForm projectId={projectId} /> : null}
      <div className="card">
        <table className="table" aria-label="Members">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              <th scope="col">Member since</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((member) => {
              const me = member.user_id === myUserId;
              return (
                <tr key={member.user_id} data-testid={`member-${member.username}`}>
                  <td>
                    <span className="avatar" aria-hidden="true">
                      {member.username.slice(0, 1).toUpperCase()}
                    </span>
                    {member.username}
                    {me ? <span className="muted"> (you)</span> : null}
                  </td>
                  <td>
                    {canManage ? (
                      <Select
                        aria-label={`Role of ${member.username}`}
                        value={member.role}
                        disabled={update.isPending}
                        onChange={(e) => update.mutate({ userId: member.user_id, role: e.target.value as Role })}
                      >
                        {ROLES.map((role) => (
                          <option key={role} value={role}>
                            {role}
                          </option>
                        ))}
                      </Select>
                    ) : (
                      <StatusBadge status={member.role} />
                    )}
                  </td>
                  <td className="muted">{formatDateTime(member.added_at)}</td>
                  <td className="cell-actions">
                    {me ? (
                      <Button
                        size="sm"
                        variant="ghost"
                        onClick={() => {
                          if (window.confirm("Leave this project? You will need an owner to add you again.")) {
                            remove.mutate(member.user_id, { onSuccess: onLeft });
                          }
                        }}
                      >
                        Leave
                      </Button>
                    ) : canManage ? (
                      <Button
                        size="sm"
                        variant="ghost"
                        aria-label={`Remove ${member.username}`}
                        onClick={() => {
                          if (window.confirm(`Remove ${member.username} from the project?`)) {
                            remove.mutate(member.user_id, { onSuccess: () => toasts.success(`${member.username} removed`) });
                          }
                        }}
                      >
                        Remove
                      </Button>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <dl className="role-help">
        {ROLES.map((role) => (
          <div key={role}>
            <dt>
              <StatusBadge status={role} />
            </dt>
            <dd>{ROLE_HELP[role]}</dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

function AddMemberForm({ projectId }: { projectId: string }) {
  const add = useAddMember(projectId);
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("viewer");

  function submit(event: FormEvent) {
    event.preventDefault();
    add.mutate(
      { username: username.trim(), role },
      {
        onSuccess: (member) => {
          setUsername("");
          toasts.success(`${member.username} added as ${member.role}`);
        },
      },
    );
  }

  return (
    <form className="card card-pad inline-form" onSubmit={submit} aria-label="Add member">
      <Field label="Username" hint="Their exact username.">
        {(props) => <Input {...props} name="member-username" required maxLength={32} value={username} onChange={(e) => setUsername(e.target.value)} />}
      </Field>
      <Field label="Role">
        {(props) => (
          <Select {...props} name="member-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((item) => (
              <option key={item} value={item}>
                {item}
              </option>
            ))}
          </Select>
        )}
      </Field>
      <Button type="submit" variant="primary" busy={add.isPending}>
        Add member
      </Button>
    </form>
  );
}

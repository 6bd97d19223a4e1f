import { useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Field, Input, Textarea } from "../../../components/ui";
import { fieldError } from "../../../lib/problem";
import { useCreateProject, type Project } from "../api";

export function CreateProjectDialog({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (project: Project) => void }) {
  const create = useCreateProject();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [physicalOnly, setPhysicalOnly] = useState(false);

  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate(
      { name: name.trim(), description, physical_only: physicalOnly },
      {
        onSuccess: (project) => {
          setName("");
          setDescription("");
          onCreated(project);
        },
      },
    );
  }

  return (
    <Dialog open={open} title="New project" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <Field label="Name" error={fieldError(create.error, "name")}>
          {(props) => <Input {...props} name="name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} autoFocus />}
        </Field>
        <Field label="Description" error={fieldError(create.error, "description")}>
          {(props) => <Textarea {...props} name="description" rows={3} maxLength={4000} value={description} onChange={(e) => setDescription(e.target.value)} />}
        </Field>
        <label className="checkbox">
          <input type="checkbox" checked={physicalOnly} onChange={(e) => setPhysicalOnly(e.target.checked)} />
          <span>
            Viewers see physical values only
            <span className="field-hint block">Raw sensor values stay visible to owners and editors.</span>
          </span>
        </label>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={create.isPending}>
            Create project
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

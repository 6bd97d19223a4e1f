import { useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Field, Input, parseTags, Textarea } from "../../../components/ui";
import { fieldError } from "../../../lib/problem";
import { useCreateExperiment, type Experiment } from "../api";

export function CreateExperimentDialog({
  projectId,
  open,
  onClose,
  onCreated,
}: {
  projectId: string;
  open: boolean;
  onClose: () => void;
  onCreated: (experiment: Experiment) => void;
}) {
  const create = useCreateExperiment(projectId);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [tags, setTags] = useState("");
  const [type, setType] = useState("");

  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate(
      { name: name.trim(), description, tags: parseTags(tags), experiment_type: type.trim() || null },
      {
        onSuccess: (experiment) => {
          setName("");
          setDescription("");
          setTags("");
          setType("");
          onCreated(experiment);
        },
      },
    );
  }

  const error = create.error;
  return (
    <Dialog open={open} title="New experiment" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <Field label="Name" error={fieldError(error, "name")}>
          {(props) => <Input {...props} name="name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} autoFocus />}
        </Field>
        <Field label="Description" error={fieldError(error, "description")}>
          {(props) => <Textarea {...props} name="description" rows={3} value={description} onChange={(e) => setDescription(e.target.value)} />}
        </Field>
        <div className="form-row">
          <Field label="Tags" hint="Separated by commas or spaces." error={fieldError(error, "tags")}>
            {(props) => <Input {...props} name="tags" value={tags} onChange={(e) => setTags(e.target.value)} placeholder="aero, wing-b" />}
          </Field>
          <Field label="Type" error={fieldError(error, "experiment_type")}>
            {(props) => <Input {...props} name="experiment_type" maxLength={100} value={type} onChange={(e) => setType(e.target.value)} placeholder="wind_tunnel" />}
          </Field>
        </div>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={create.isPending}>
            Create experiment
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

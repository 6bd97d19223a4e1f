import { useEffect, useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Field, Input, parseTags, Textarea } from "../../../components/ui";
import { fieldError } from "../../../lib/problem";
import { useUpdateExperiment, type Experiment } from "../api";

/** An experiment's name, description, tags and type; only what changed is sent. */
export function EditExperimentDialog({ experiment, open, onClose }: { experiment: Experiment; open: boolean; onClose: () => void }) {
  const update = useUpdateExperiment(experiment.id);
  const [name, setName] = useState(experiment.name);
  const [description, setDescription] = useState(experiment.description);
  const [tags, setTags] = useState(experiment.tags.join(", "));
  const [type, setType] = useState(experiment.experiment_type ?? "");

  useEffect(() => {
    if (!open) return;
    setName(experiment.name);
    setDescription(experiment.description);
    setTags(experiment.tags.join(", "));
    setType(experiment.experiment_type ?? "");
    update.reset();
    // A fresh form each time it opens, from the values of that moment.
  }, [open]);

  function submit(event: FormEvent) {
    event.preventDefault();
    const nextTags = parseTags(tags);
    const nextType = type.trim() || null;
    const changes = {
      ...(name.trim() !== experiment.name ? { name: name.trim() } : {}),
      ...(description !== experiment.description ? { description } : {}),
      ...(nextTags.join(" ") !== experiment.tags.join(" ") ? { tags: nextTags } : {}),
      ...(nextType !== experiment.experiment_type ? { experiment_type: nextType } : {}),
    };
    if (Object.keys(changes).length === 0) {
      onClose();
      return;
    }
    update.mutate(changes, { onSuccess: onClose });
  }

  const error = update.error;
  return (
    <Dialog open={open} title="Edit experiment" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <Field label="Name" error={fieldError(error, "name")}>
          {(props) => <Input {...props} name="name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Description" error={fieldError(error, "description")}>
          {(props) => <Textarea {...props} name="description" rows={3} value={description} onChange={(e) => setDescription(e.target.value)} />}
        </Field>
        <div className="form-row">
          <Field label="Tags" hint="Separated by commas or spaces." error={fieldError(error, "tags")}>
            {(props) => <Input {...props} name="tags" value={tags} onChange={(e) => setTags(e.target.value)} />}
          </Field>
          <Field label="Type" error={fieldError(error, "experiment_type")}>
            {(props) => <Input {...props} name="experiment_type" maxLength={100} value={type} onChange={(e) => setType(e.target.value)} />}
          </Field>
        </div>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={update.isPending}>
            Save
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

import { useEffect, useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Field, Input, parseTags, Textarea } from "../../../components/ui";
import { fieldError } from "../../../lib/problem";
import { useUpdateRun, type Run } from "../api";

/** Name, tags and notes of a run; only what changed is sent. */
export function EditRunDialog({ run, open, onClose }: { run: Run; open: boolean; onClose: () => void }) {
  const update = useUpdateRun(run.id);
  const [name, setName] = useState(run.name);
  const [tags, setTags] = useState(run.tags.join(", "));
  const [notes, setNotes] = useState(run.notes);

  useEffect(() => {
    if (!open) return;
    setName(run.name);
    setTags(run.tags.join(", "));
    setNotes(run.notes);
    update.reset();
    // A fresh form each time it opens, from the values of that moment.
  }, [open]);

  function submit(event: FormEvent) {
    event.preventDefault();
    const nextTags = parseTags(tags);
    const changes = {
      ...(name.trim() !== run.name ? { name: name.trim() } : {}),
      ...(nextTags.join(" ") !== run.tags.join(" ") ? { tags: nextTags } : {}),
      ...(notes !== run.notes ? { notes } : {}),
    };
    if (Object.keys(changes).length === 0) {
      onClose();
      return;
    }
    update.mutate(changes, { onSuccess: onClose });
  }

  return (
    <Dialog open={open} title="Edit run" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <Field label="Name" error={fieldError(update.error, "name")}>
          {(props) => <Input {...props} name="name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Tags" hint="Separated by commas or spaces." error={fieldError(update.error, "tags")}>
          {(props) => <Input {...props} name="tags" value={tags} onChange={(e) => setTags(e.target.value)} />}
        </Field>
        <Field label="Notes" error={fieldError(update.error, "notes")}>
          {(props) => <Textarea {...props} name="notes" rows={5} value={notes} onChange={(e) => setNotes(e.target.value)} />}
        </Field>
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

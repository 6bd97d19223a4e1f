import { useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Field, Input, parseTags, Textarea } from "../../../components/ui";
import { fieldError } from "../../../lib/problem";
import { useCreateRun, type Run } from "../api";
import { parseJsonObject } from "../json-object";

const GIT_SHA = /^[0-9a-f]{7,40}$/;

export function CreateRunDialog({
  experimentId,
  open,
  onClose,
  onCreated,
}: {
  experimentId: string;
  open: boolean;
  onClose: () => void;
  onCreated: (run: Run) => void;
}) {
  const create = useCreateRun(experimentId);
  const [name, setName] = useState("");
  const [params, setParams] = useState("");
  const [env, setEnv] = useState("");
  const [gitSha, setGitSha] = useState("");
  const [tags, setTags] = useState("");
  const [notes, setNotes] = useState("");
  const [touched, setTouched] = useState(false);

  const parsedParams = parseJsonObject(params);
  const parsedEnv = parseJsonObject(env);
  const sha = gitSha.trim().toLowerCase();
  const shaError = sha && !GIT_SHA.test(sha) ? "7 to 40 hex digits." : undefined;
  const localErrors = {
    params: "error" in parsedParams ? parsedParams.error : undefined,
    env: "error" in parsedEnv ? parsedEnv.error : undefined,
    git_sha: shaError,
  };

  function submit(event: FormEvent) {
    event.preventDefault();
    setTouched(true);
    if (!("value" in parsedParams) || !("value" in parsedEnv) || shaError) return;
    create.mutate(
      { name: name.trim(), params: parsedParams.value, env: parsedEnv.value, git_sha: sha || null, tags: parseTags(tags), notes },
      {
        onSuccess: (run) => {
          setName("");
          setParams("");
          setEnv("");
          setGitSha("");
          setTags("");
          setNotes("");
          setTouched(false);
          onCreated(run);
        },
      },
    );
  }

  const error = create.error;
  const show = (field: keyof typeof localErrors) => (touched ? localErrors[field] : undefined) ?? fieldError(error, field);
  return (
    <Dialog open={open} title="New run" onClose={onClose} wide>
      <form className="form" onSubmit={submit} noValidate>
        <div className="form-row">
          <Field label="Name" error={fieldError(error, "name")}>
            {(props) => <Input {...props} name="name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} autoFocus />}
          </Field>
          <Field label="Git SHA" hint="The commit that ran." error={show("git_sha")}>
            {(props) => <Input {...props} name="git_sha" className="input mono" value={gitSha} onChange={(e) => setGitSha(e.target.value)} placeholder="3f9a2c1" />}
          </Field>
        </div>
        <div className="form-row">
          <Field label="Parameters (JSON)" error={show("params")}>
            {(props) => <Textarea {...props} name="params" className="input textarea mono" rows={5} value={params} onChange={(e) => setParams(e.target.value)} placeholder={'{"speed_ms": 25, "angle_deg": 4}'} />}
          </Field>
          <Field label="Environment (JSON)" error={show("env")}>
            {(props) => <Textarea {...props} name="env" className="input textarea mono" rows={5} value={env} onChange={(e) => setEnv(e.target.value)} placeholder={'{"rig": "WT-2", "python": "3.11"}'} />}
          </Field>
        </div>
        <Field label="Tags" hint="Separated by commas or spaces." error={fieldError(error, "tags")}>
          {(props) => <Input {...props} name="tags" value={tags} onChange={(e) => setTags(e.target.value)} />}
        </Field>
        <Field label="Notes" error={fieldError(error, "notes")}>
          {(props) => <Textarea {...props} name="notes" rows={2} value={notes} onChange={(e) => setNotes(e.target.value)} />}
        </Field>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={create.isPending}>
            Create run
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

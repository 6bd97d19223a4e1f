import { useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Empty, Field, Input, Loading, StatusBadge } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { toasts } from "../../../lib/toast-store";
import { useProfileAction, useProfiles, type Profile } from "./api";
import { describeProfile } from "./draft";

/** The sensor's profiles: the validity timeline first (by start), then the drafts; those who
 * manage the sensor publish, schedule and deprecate them. */
export function ProfileTimeline({ sensorId, canManage }: { sensorId: string; canManage: boolean }) {
  const profiles = useProfiles(sensorId);
  const act = useProfileAction(sensorId);
  const [scheduling, setScheduling] = useState<Profile | null>(null);
  if (profiles.isPending) return <Loading />;
  if (profiles.isError) return <Empty title="The conversion profiles could not be loaded." />;
  const items = sortedForTimeline(profiles.data.items);
  if (items.length === 0) return <p className="muted card-pad">No conversion profile: readings keep only their raw values.</p>;
  const done = (profile: Profile) => toasts.success(`Profile ${profile.version} is ${profile.status}`);
  return (
    <>
      <table className="table" aria-label="Conversion profiles">
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Conversion</th>
            <th scope="col">Status</th>
            <th scope="col">Valid from</th>
            <th scope="col">Valid to</th>
            {canManage ? (
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {items.map((profile) => (
            <tr key={profile.id} data-testid={`profile-${profile.version}`}>
              <td className="cell-main">
                <strong>{profile.version}</strong>
                {profile.description ? <div className="muted clamp-1">{profile.description}</div> : null}
              </td>
              <td className="mono">{describeProfile(profile.kind, profile.payload)}</td>
              <td>
                <StatusBadge status={profile.status} />
              </td>
              <td className="muted">{formatDateTime(profile.valid_from)}</td>
              <td className="muted">{profile.valid_to ? formatDateTime(profile.valid_to) : profile.valid_from ? "open" : "—"}</td>
              {canManage ? (
                <td className="cell-actions">
                  {profile.status === "draft" || profile.status === "scheduled" ? (
                    <Button size="sm" variant="ghost" aria-label={`Publish ${profile.version} now`} onClick={() => act.mutate({ action: "publish", profileId: profile.id }, { onSuccess: done })}>
                      Publish now
                    </Button>
                  ) : null}
                  {profile.status === "draft" ? (
                    <Button size="sm" variant="ghost" aria-label={`Schedule ${profile.version}`} onClick={() => setScheduling(profile)}>
                      Schedule…
                    </Button>
                  ) : null}
                  {profile.status === "active" ? (
                    <Button
                      size="sm"
                      variant="ghost"
                      aria-label={`Deprecate ${profile.version}`}
                      onClick={() => {
                        if (window.confirm(`Deprecate ${profile.version}? Readings from now on keep only their raw values until another profile starts.`)) {
                          act.mutate({ action: "deprecate", profileId: profile.id }, { onSuccess: done });
                        }
                      }}
                    >
                      Deprecate
                    </Button>
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      <ScheduleDialog
        profile={scheduling}
        busy={act.isPending}
        onClose={() => setScheduling(null)}
        onSchedule={(validFrom) => act.mutate({ action: "schedule", profileId: scheduling!.id, validFrom }, { onSuccess: (profile) => (done(profile), setScheduling(null)) })}
      />
    </>
  );
}

/** Started profiles by start (the timeline), then drafts by creation. */
export function sortedForTimeline(profiles: readonly Profile[]): Profile[] {
  const key = (profile: Profile) => profile.valid_from ?? `~${profile.created_at}`;
  return [...profiles].sort((a, b) => key(a).localeCompare(key(b)));
}

function ScheduleDialog({ profile, busy, onClose, onSchedule }: { profile: Profile | null; busy: boolean; onClose: () => void; onSchedule: (validFrom: string) => void }) {
  const [at, setAt] = useState("");
  function submit(event: FormEvent) {
    event.preventDefault();
    onSchedule(new Date(at).toISOString());
  }
  return (
    <Dialog open={profile !== null} title={`Schedule ${profile?.version ?? ""}`} onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <p className="muted">From this time on, readings are converted with this profile; the profile valid before it ends there.</p>
        <Field label="Valid from (your local time)">{(props) => <Input {...props} type="datetime-local" required value={at} onChange={(e) => setAt(e.target.value)} />}</Field>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={busy} disabledReason={at ? null : "Choose when it starts."}>
            Schedule
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

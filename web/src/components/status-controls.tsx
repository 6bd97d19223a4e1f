import { Button } from "./ui";

export interface StatusAction<S extends string> {
  to: S;
  label: string;
  /** Why the move is not possible now; null when it is. */
  reason: string | null;
}

/** One button per status move; a move the state machine refuses is disabled with its reason. */
export function StatusControls<S extends string>({
  actions,
  busy,
  onMove,
  label,
}: {
  actions: readonly StatusAction<S>[];
  busy: boolean;
  onMove: (to: S) => void;
  label: string;
}) {
  return (
    <div className="button-row" role="group" aria-label={label}>
      {actions.map((action) => (
        <Button
          key={action.to}
          size="sm"
          variant={action.to === "failed" ? "danger" : action.to === "archived" ? "ghost" : "secondary"}
          disabledReason={action.reason}
          busy={busy}
          onClick={() => onMove(action.to)}
          data-move={action.to}
        >
          {action.label}
        </Button>
      ))}
    </div>
  );
}

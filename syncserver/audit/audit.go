// Package audit writes Leadify's audit trail: who did what, in which store, to
// what, when, with a summary of the change. Entries are written in the same
// transaction as the change they describe, and the server's database role can
// only insert and read them, never rewrite them.
package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/queries"
)

// Entry is one audited action.
type Entry struct {
	Actor      uuid.UUID // uuid.Nil for the system (jobs, webhooks)
	Store      uuid.UUID // uuid.Nil for platform-level actions
	Action     string    // "store.updated", "member.invited", …
	TargetType string
	TargetID   string
	Summary    any // marshalled to JSON; typically the changed fields
}

// Write records e inside tx.
func Write(ctx context.Context, tx *postgres.Tx, e Entry) error {
	summary := []byte("{}")
	if e.Summary != nil {
		var err error
		if summary, err = json.Marshal(e.Summary); err != nil {
			return fmt.Errorf("audit %s: marshal summary: %w", e.Action, err)
		}
	}
	err := tx.Q.InsertAudit(ctx, tx, queries.InsertAuditParams{
		ID: uuid.Must(uuid.NewV7()), StoreID: nilIfZero(e.Store), ActorUserID: nilIfZero(e.Actor),
		Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID, Summary: summary,
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

func nilIfZero(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

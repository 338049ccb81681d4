package intake

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/postgres"
)

// SourceKind is where a source's rows come from.
type SourceKind string

// The source kinds.
const (
	KindFile  SourceKind = "file"
	KindSheet SourceKind = "sheet"
)

// SourceRow is a stored intake source (an upload target or a sheet
// connection). Credentials stay sealed here; only the sheet client opens them.
type SourceRow struct {
	StoreID       uuid.UUID
	ID            uuid.UUID
	Kind          SourceKind
	Name          string
	Spec          Spec
	SpreadsheetID string
	Range         string
	HeaderRow     int
	SyncMinutes   int
	Credentials   []byte // sealed
}

// CreateSource inserts a source in tx (scoped to its store).
func CreateSource(ctx context.Context, tx *postgres.Tx, s SourceRow) error {
	spec, err := json.Marshal(s.Spec)
	if err != nil {
		return err
	}
	if s.HeaderRow == 0 {
		s.HeaderRow = 1
	}
	if s.SyncMinutes == 0 {
		s.SyncMinutes = 15
	}
	_, err = tx.Exec(ctx, `INSERT INTO intake_sources (store_id, id, kind, name, mapping, spreadsheet_id, sheet_range,
  header_row, sync_minutes, credentials) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`, s.StoreID, s.ID, string(s.Kind), s.Name,
		spec, s.SpreadsheetID, s.Range, s.HeaderRow, s.SyncMinutes, s.Credentials)
	if err != nil {
		return fmt.Errorf("create source: %w", postgres.Translate(err))
	}
	return nil
}

// FileSource returns the store's upload source, creating it on first use:
// every upload of a store shares one, so re-uploading a file updates the
// leads it made instead of importing them again.
func FileSource(ctx context.Context, tx *postgres.Tx, store uuid.UUID) (uuid.UUID, error) {
	_, err := tx.Exec(ctx, `INSERT INTO intake_sources (store_id, id, kind, name) VALUES ($1, $2, 'file', 'Uploads')
ON CONFLICT (store_id) WHERE kind = 'file' AND deleted_at IS NULL DO NOTHING`, store, uuid.New())
	if err != nil {
		return uuid.Nil, fmt.Errorf("create upload source: %w", postgres.Translate(err))
	}
	var id uuid.UUID
	err = tx.QueryRow(ctx, `SELECT id FROM intake_sources WHERE store_id = $1 AND kind = 'file' AND deleted_at IS NULL`, store).Scan(&id)
	if err != nil {
		return uuid.Nil, fmt.Errorf("find upload source: %w", postgres.Translate(err))
	}
	return id, nil
}

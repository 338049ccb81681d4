package localstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// CustomerHistory is what the replica knows of a lead's customer: orders the
// seller had from this phone before the lead, parcels delivered, parcels
// refused or returned. Zero for leads seen redacted.
type CustomerHistory struct {
	Orders, Delivered, Refusals int32
}

// CustomerHistory returns the history written on a lead; ok is false when the
// replica does not hold the lead.
func (db *DB) CustomerHistory(ctx context.Context, lead uuid.UUID) (h CustomerHistory, ok bool, err error) {
	err = db.sql.QueryRowContext(ctx, `SELECT customer_orders, customer_delivered, customer_refusals FROM leads WHERE id = ?`,
		lead.String()).Scan(&h.Orders, &h.Delivered, &h.Refusals)
	if errors.Is(err, sql.ErrNoRows) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("read customer history: %w", err)
	}
	return h, true, nil
}

package syncsim

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
)

// checkOptimistic runs right after a client pulled without pushing, while
// the server stands still: every lead with pending local mutations must show
// the server's row with those mutations re-applied on top (the rebase), not
// the server's row alone nor the mutations applied twice.
func (s *Sim) checkOptimistic(ctx context.Context, c *client) {
	if s.asideHoldsBack(ctx) {
		return // the pull rightly stopped below an open aside writer's versions
	}
	rows, err := c.read.QueryContext(ctx, `SELECT store_id, name, version, args, created_at FROM outbox ORDER BY mutation_id`)
	if err != nil {
		s.t.Fatal(err)
	}
	type pending struct {
		m  mutation.Mutation
		at time.Time // when it was made: untouched leads keep it applied as then
	}
	byLead := map[uuid.UUID][]pending{}
	var order []uuid.UUID
	for rows.Next() {
		var store, name string
		var version int
		var args []byte
		var at int64
		if err := rows.Scan(&store, &name, &version, &args, &at); err != nil {
			s.t.Fatal(err)
		}
		m, err := mutation.Decode(name, version, args)
		if err != nil {
			s.t.Fatalf("%s: outbox holds an undecodable mutation: %v", c.name, err)
		}
		if _, seen := byLead[m.LeadID()]; !seen {
			order = append(order, m.LeadID())
		}
		byLead[m.LeadID()] = append(byLead[m.LeadID()], pending{m, time.UnixMicro(at).UTC()})
	}
	rows.Close()
	if len(order) == 0 {
		return
	}
	var role string
	var permsJSON []byte
	var lease int
	if err := c.read.QueryRowContext(ctx, `SELECT role, permissions, lease_minutes FROM memberships WHERE store_id = ?`,
		s.store.String()).Scan(&role, &permsJSON, &lease); err != nil {
		return // no membership cached: nothing applies locally
	}
	var names []string
	if err := json.Unmarshal(permsJSON, &names); err != nil {
		s.t.Fatal(err)
	}
	perms := map[string]bool{}
	for _, p := range names {
		perms[p] = true
	}
	env := mutation.Env{Actor: mutation.Actor{UserID: c.user, Role: mutation.Role(role), Permissions: perms},
		Now: s.now, Lease: time.Duration(lease) * time.Minute}

	conn := s.owner
	for _, id := range order {
		var got struct {
			status, name, address string
			attempts              int32
			redacted              bool
		}
		err := c.read.QueryRowContext(ctx, `SELECT status, customer_name, address, call_attempts, redacted FROM leads WHERE id = ?`,
			id.String()).Scan(&got.status, &got.name, &got.address, &got.attempts, &got.redacted)
		if err != nil || got.redacted {
			continue // not in the user's full view any more
		}
		server, ok := serverLead(ctx, s, conn, id)
		if !ok {
			continue
		}
		// A pull that touches the lead re-applies its pending mutations now;
		// one that does not leaves them as they were applied when made. A
		// mutation that depends on the time (a callback must be in the
		// future) may apply then and not now: either result is right.
		var l mutation.Lead
		for _, now := range []bool{true, false} {
			l = server
			for _, p := range byLead[id] {
				e := env
				if !now {
					e.Now = p.at
				}
				if res, rej := p.m.Apply(e, &l); rej == nil {
					l = res.Lead
				}
			}
			if got.status == l.Status.String() && got.attempts == l.CallAttempts && got.address == l.Address && got.name == l.CustomerName {
				break
			}
		}
		if got.status != l.Status.String() || got.attempts != l.CallAttempts || got.address != l.Address || got.name != l.CustomerName {
			s.violate("%s: lead %s shows %+v after a pull, but the server's row with its %d pending mutations re-applied is status=%s attempts=%d name=%q address=%q",
				c.name, id, got, len(byLead[id]), l.Status, l.CallAttempts, l.CustomerName, l.Address)
		}
	}
}

// serverLead reads the fields of a lead that mutations depend on.
func serverLead(ctx context.Context, s *Sim, conn *pgx.Conn, id uuid.UUID) (mutation.Lead, bool) {
	var (
		l                  mutation.Lead
		status             string
		items              []byte
		cod                int64
		assigned, dup      *uuid.UUID
		leaseUntil, callAt *time.Time
	)
	err := conn.QueryRow(ctx, `SELECT id, store_id, created_at, updated_at, deleted_at, status, customer_name, phone_raw,
  phone_e164, city_id, city_raw, address, items, cod, assigned_to, lease_until, call_attempts, callback_at, duplicate_of
FROM leads WHERE id = $1`, id).Scan(&l.ID, &l.StoreID, &l.CreatedAt, &l.UpdatedAt, &l.DeletedAt, &status, &l.CustomerName,
		&l.PhoneRaw, &l.PhoneE164, &l.CityID, &l.CityRaw, &l.Address, &items, &cod, &assigned, &leaseUntil, &l.CallAttempts,
		&callAt, &dup)
	if err == pgx.ErrNoRows {
		return l, false
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if l.Status, err = lead.ParseStatus(status); err != nil {
		s.t.Fatal(err)
	}
	if err := json.Unmarshal(items, &l.Items); err != nil {
		s.t.Fatal(err)
	}
	l.COD = money.Amount(cod)
	if assigned != nil {
		l.AssignedTo = *assigned
	}
	if dup != nil {
		l.DuplicateOf = *dup
	}
	if leaseUntil != nil {
		l.LeaseUntil = *leaseUntil
	}
	if callAt != nil {
		l.CallbackAt = *callAt
	}
	return l, true
}

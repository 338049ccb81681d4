package syncer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
)

// MaxPushBatch bounds the mutations of one Push.
const MaxPushBatch = 1000

// Errors of Push and Handshake, turned into Connect codes by the API.
var (
	ErrNoClient      = errors.New("unknown client: handshake first")
	ErrForeignClient = errors.New("this client id belongs to another user")
	ErrBatchTooLarge = fmt.Errorf("a push carries at most %d mutations", MaxPushBatch)
	ErrUpdateNeeded  = errors.New("this version of the app is too old for the server: please update (your pending work is kept)")
)

// Handshake registers (or re-finds) a client of the actor and returns the
// next mutation id the server expects from it.
func (s *Service) Handshake(ctx context.Context, a *auth.Actor, clientID uuid.UUID, schema int32, mutationHash, device string) (int64, error) {
	if schema != SchemaVersion && schema != SchemaVersion-1 || (schema == SchemaVersion && mutationHash != mutation.SetHash()) {
		return 0, ErrUpdateNeeded
	}
	var owner uuid.UUID
	var last int64
	err := s.pool.QueryRow(ctx, `INSERT INTO sync_clients (client_id, user_id, device_name, schema_version)
VALUES ($1, $2, $3, $4)
ON CONFLICT (client_id) DO UPDATE SET last_seen_at = now(), schema_version = excluded.schema_version,
  device_name = excluded.device_name
  WHERE sync_clients.user_id = excluded.user_id
RETURNING user_id, last_mutation_id`, clientID, a.UserID, device, schema).Scan(&owner, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrForeignClient
	}
	if err != nil {
		return 0, fmt.Errorf("register client: %w", err)
	}
	return last + 1, nil
}

// pending is one new mutation of a push batch.
type pending struct {
	pb     *leadifyv1.Mutation
	m      mutation.Mutation
	store  uuid.UUID
	result *leadifyv1.MutationResult
	reject *mutation.Rejection
	apply  mutation.Result
	replay bool // a repeat applied again: only under Bugs.ApplyRepeats
}

// Push applies a batch of a client's mutations. Mutation ids must continue the
// client's sequence: ids already recorded are answered from the record (never
// applied twice), the next ones are applied in order in one transaction —
// rejected ones recorded as rejection rows without stopping the rest — and the
// first id after a gap is returned as resendFrom with nothing after it looked at.
func (s *Service) Push(ctx context.Context, a *auth.Actor, clientID uuid.UUID, muts []*leadifyv1.Mutation) ([]*leadifyv1.MutationResult, int64, error) {
	if len(muts) > MaxPushBatch {
		return nil, 0, ErrBatchTooLarge
	}
	var results []*leadifyv1.MutationResult
	var resendFrom int64
	err := Write(ctx, s.pool, a.Scope(), func(w *Writer) error {
		results, resendFrom = nil, 0
		var owner uuid.UUID
		var last int64
		err := w.Tx.QueryRow(ctx, `SELECT user_id, last_mutation_id FROM sync_clients WHERE client_id = $1 FOR UPDATE`, clientID).Scan(&owner, &last)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoClient
		}
		if err != nil {
			return err
		}
		if owner != a.UserID {
			return ErrForeignClient
		}
		var repeats []int64
		var fresh, replays []*pending
		next := last + 1
		for _, pb := range muts {
			switch {
			case pb.MutationId <= 0:
				return &InvalidError{fmt.Sprintf("mutation id %d: ids start at 1", pb.MutationId)}
			case pb.MutationId <= last && s.bugs.ApplyRepeats:
				replays = append(replays, &pending{pb: pb, replay: true})
			case pb.MutationId <= last:
				repeats = append(repeats, pb.MutationId)
			case pb.MutationId == next:
				fresh = append(fresh, &pending{pb: pb})
				next++
			default:
				resendFrom = next
			}
			if resendFrom != 0 {
				break
			}
		}
		if len(repeats) > 0 {
			recorded, err := recordedResults(ctx, w.Tx, clientID, repeats)
			if err != nil {
				return err
			}
			results = append(results, recorded...)
		}
		if len(replays) > 0 {
			if err := s.apply(ctx, w, a, clientID, replays); err != nil {
				return err
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		if err := s.apply(ctx, w, a, clientID, fresh); err != nil {
			return err
		}
		for _, p := range fresh {
			results = append(results, p.result)
		}
		_, err = w.Tx.Exec(ctx, `UPDATE sync_clients SET last_mutation_id = $2, last_seen_at = now() WHERE client_id = $1`,
			clientID, fresh[len(fresh)-1].pb.MutationId)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(results, func(x, y *leadifyv1.MutationResult) int { return int(x.MutationId - y.MutationId) })
	return results, resendFrom, nil
}

// InvalidError is a malformed request.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// recordedSQL reads the recorded outcomes of the mutations $2 (each once,
// in id order) of client $1: one search of the key per mutation.
// By key, whatever the planner believes of the client: see
// pgtest.RequireKeyed, TestRecordedResultsSearchByID.
const recordedSQL = `SELECT m.* FROM (SELECT DISTINCT id FROM unnest($2::bigint[]) AS u(id)) u,
LATERAL (SELECT mutation_id, applied, scope_id, version, code, reason FROM sync_mutations
  WHERE client_id = $1 AND mutation_id = u.id OFFSET 0) m
ORDER BY m.mutation_id`

func recordedResults(ctx context.Context, tx *postgres.Tx, client uuid.UUID, ids []int64) ([]*leadifyv1.MutationResult, error) {
	rows, err := tx.Query(ctx, recordedSQL, client, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*leadifyv1.MutationResult
	for rows.Next() {
		var r leadifyv1.MutationResult
		var scope uuid.UUID
		if err := rows.Scan(&r.MutationId, &r.Applied, &scope, &r.Version, &r.Code, &r.Reason); err != nil {
			return nil, err
		}
		r.ScopeId = scope.String()
		out = append(out, &r)
	}
	return out, rows.Err()
}

func reject(p *pending, code mutation.Code, reason string) {
	p.reject = &mutation.Rejection{Code: code, Reason: reason}
}

// apply runs the fresh mutations in order against the current rows, then
// stamps versions, writes rows, rejection rows and the record of outcomes.
func (s *Service) apply(ctx context.Context, w *Writer, a *auth.Actor, clientID uuid.UUID, fresh []*pending) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	// Decode and place every mutation; lock the scopes before reading rows.
	scopes := []uuid.UUID{a.UserID}
	leadIDs := map[uuid.UUID][]uuid.UUID{}
	for _, p := range fresh {
		m, err := mutation.Decode(p.pb.Name, int(p.pb.Version), p.pb.Args)
		if err != nil {
			reject(p, mutation.CodeInvalid, "The app sent a change the server cannot read: "+err.Error())
			continue
		}
		p.m = m
		store, err := uuid.Parse(p.pb.StoreId)
		if _, member := a.Membership(store); err != nil || !member {
			reject(p, mutation.CodeNotFound, "This lead's store is not one of yours any more.")
			continue
		}
		p.store = store
		scopes = append(scopes, store)
		leadIDs[store] = append(leadIDs[store], m.LeadID())
	}
	if err := w.Lock(scopes...); err != nil {
		return err
	}
	leads := map[uuid.UUID]*mutation.Lead{}
	loaded := map[uuid.UUID]uuid.UUID{} // lead → holder before this batch
	for store, ids := range leadIDs {
		got, err := loadLeads(ctx, w.Tx, store, ids, true)
		if err != nil {
			return fmt.Errorf("load leads: %w", err)
		}
		for id, l := range got {
			leads[id] = l
			loaded[id] = l.AssignedTo
		}
	}
	names, err := s.memberNames(ctx, w.Tx, leadIDs)
	if err != nil {
		return err
	}

	// Apply in order in memory; later mutations see earlier ones' results.
	applied := map[uuid.UUID]int{}
	for _, p := range fresh {
		if p.reject != nil {
			continue
		}
		cur := leads[p.m.LeadID()]
		if cur != nil && cur.StoreID != p.store {
			cur = nil
		}
		if rej := s.checkAssignee(ctx, w.Tx, p); rej != nil {
			p.reject = rej
			continue
		}
		m, _ := a.Membership(p.store)
		env := mutation.Env{Actor: actorFor(a, m), Now: now, Lease: time.Duration(m.LeaseMinutes) * time.Minute, Names: names}
		res, rej := p.m.Apply(env, cur)
		if rej != nil {
			p.reject = rej
			continue
		}
		p.apply = res
		leads[res.Lead.ID] = &res.Lead
		applied[p.store]++
	}

	// Stamp versions: one per applied mutation in its store, one per rejection in the user scope.
	first := map[uuid.UUID]int64{}
	for store, n := range applied {
		v, err := w.Reserve(store, n)
		if err != nil {
			return err
		}
		first[store] = v
	}
	nRejected := 0
	for _, p := range fresh {
		if p.reject != nil {
			nRejected++
		}
	}
	var nextRejection int64
	if nRejected > 0 {
		if nextRejection, err = w.Reserve(a.UserID, nRejected); err != nil {
			return err
		}
	}

	finalLeads := map[uuid.UUID]mutation.Lead{}
	var events []mutation.LeadEvent
	var rejections []Rejection
	for _, p := range fresh {
		if p.reject != nil {
			r := Rejection{ID: uuid.Must(uuid.NewV7()), UserID: a.UserID, Version: nextRejection, ClientID: clientID,
				MutationID: p.pb.MutationId, MutationName: p.pb.Name, StoreID: p.store, Code: string(p.reject.Code), Reason: p.reject.Reason}
			if p.m != nil {
				r.LeadID = p.m.LeadID()
			}
			nextRejection++
			rejections = append(rejections, r)
			p.result = &leadifyv1.MutationResult{MutationId: p.pb.MutationId, ScopeId: a.UserID.String(), Version: r.Version,
				Code: r.Code, Reason: r.Reason}
			continue
		}
		v := first[p.store]
		first[p.store]++
		l := p.apply.Lead
		l.Version = v
		if prev, ok := finalLeads[l.ID]; !ok || prev.Version < v {
			finalLeads[l.ID] = l
		}
		for _, e := range p.apply.Events {
			e.Version = v
			if p.replay {
				e.ID = uuid.New()
			}
			events = append(events, e)
		}
		p.result = &leadifyv1.MutationResult{MutationId: p.pb.MutationId, Applied: true, ScopeId: p.store.String(), Version: v}
	}
	toWrite := make([]mutation.Lead, 0, len(finalLeads))
	for _, l := range finalLeads {
		toWrite = append(toWrite, l)
	}
	// In version order, not the map's: the histories re-versioned below
	// then take the same versions whenever the same batch is applied (the
	// simulation replays a seed byte for byte).
	slices.SortFunc(toWrite, func(a, b mutation.Lead) int { return cmp.Compare(a.Version, b.Version) })
	if err := s.publish(ctx, w, a, fresh); err != nil {
		return err
	}
	if err := w.PutLeads(toWrite...); err != nil {
		return fmt.Errorf("write leads: %w", err)
	}
	if err := w.PutEvents(events...); err != nil {
		return fmt.Errorf("write lead events: %w", err)
	}
	// A changed holder changes who sees the lead's history: re-version it.
	for _, l := range toWrite {
		if before, ok := loaded[l.ID]; ok && before != l.AssignedTo {
			if err := w.Revision(l.StoreID, l.ID); err != nil {
				return fmt.Errorf("re-version the history of %v: %w", l.ID, err)
			}
		}
	}
	if err := w.PutRejections(rejections...); err != nil {
		return fmt.Errorf("write rejections: %w", err)
	}
	b := &pgx.Batch{}
	for _, p := range fresh {
		if p.replay {
			continue
		}
		r := p.result
		b.Queue(`INSERT INTO sync_mutations (client_id, mutation_id, name, applied, scope_id, version, code, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, clientID, r.MutationId, p.pb.Name, r.Applied, uuid.MustParse(r.ScopeId), r.Version, r.Code, r.Reason)
	}
	return w.Tx.SendBatch(ctx, b).Close()
}

func actorFor(a *auth.Actor, m auth.Membership) mutation.Actor {
	perms := map[string]bool{}
	role := mutation.Role(m.Role)
	if a.PlatformAdmin {
		role = mutation.RoleAdmin
		for _, p := range auth.AllPermissions {
			perms[string(p)] = true
		}
	}
	for _, p := range m.Permissions {
		perms[string(p)] = true
	}
	return mutation.Actor{UserID: a.UserID, Name: a.FullName, Role: role, Permissions: perms}
}

// memberNames maps the users of the stores touched to their names, for
// rejection reasons ("Lead was claimed by Sara").
func (s *Service) memberNames(ctx context.Context, tx *postgres.Tx, stores map[uuid.UUID][]uuid.UUID) (map[uuid.UUID]string, error) {
	ids := make([]uuid.UUID, 0, len(stores))
	for st := range stores {
		ids = append(ids, st)
	}
	rows, err := tx.Query(ctx, `SELECT u.id, u.full_name FROM store_members m JOIN users u ON u.id = m.user_id WHERE m.store_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]string{}
	for rows.Next() {
		var id uuid.UUID
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[id] = name
	}
	return out, rows.Err()
}

// checkAssignee refuses an assignment to someone who is not an agent of the
// lead's store (Apply cannot know the store's members).
func (s *Service) checkAssignee(ctx context.Context, tx *postgres.Tx, p *pending) *mutation.Rejection {
	var agent uuid.UUID
	switch m := p.m.(type) {
	case mutation.AssignLead:
		agent = m.AgentID
	case *mutation.AssignLead:
		agent = m.AgentID
	default:
		return nil
	}
	if agent == uuid.Nil {
		return nil
	}
	var role string
	err := tx.QueryRow(ctx, `SELECT role FROM store_members WHERE store_id = $1 AND user_id = $2`, p.store, agent).Scan(&role)
	if err != nil || role != "agent" {
		return &mutation.Rejection{Code: mutation.CodeInvalid, Reason: "That person is not an agent of this store."}
	}
	return nil
}

// publish announces, in the push's transaction, the lead status changes other
// capabilities react to: a confirmation (parcel creation, stock, commissions)
// and a cancellation after confirmation (their reversal).
func (s *Service) publish(ctx context.Context, w *Writer, a *auth.Actor, fresh []*pending) error {
	if s.events == nil {
		return nil
	}
	for _, p := range fresh {
		if p.reject != nil || p.replay {
			continue
		}
		for _, e := range p.apply.Events {
			var kind events.Kind
			switch {
			case e.ToStatus == lead.StatusConfirmed:
				kind = events.LeadConfirmed
			case e.ToStatus == lead.StatusCancelled && e.FromStatus == lead.StatusConfirmed:
				kind = events.LeadCancelled
			default:
				continue
			}
			l := p.apply.Lead
			if err := s.events.Publish(ctx, w.Tx, events.Event{ID: e.ID, Store: l.StoreID, Kind: kind, AggregateType: "lead",
				AggregateID: l.ID, Actor: a.UserID, Payload: map[string]any{"cod": l.COD, "city_id": l.CityID,
					"assigned_to": l.AssignedTo, "mutation": p.pb.Name}}); err != nil {
				return fmt.Errorf("publish %s: %w", kind, err)
			}
		}
	}
	return nil
}

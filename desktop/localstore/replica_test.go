package localstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadify/leadify/desktop/localstore"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
)

// fixture is a replica with one seller membership and one lead.
type fixture struct {
	db                       *localstore.DB
	user, store, lead, agent uuid.UUID
}

func newFixture(t *testing.T) fixture {
	db, _ := open(t)
	f := fixture{db: db, user: uuid.New(), store: uuid.New(), lead: uuid.New(), agent: uuid.New()}
	f.handshake(t, f.member())
	f.page(t, 1, "new", "Hassan", false)
	return f
}

// member is the user's membership of the store: a seller.
func (f fixture) member() []localstore.Membership {
	return []localstore.Membership{{StoreID: f.store, Role: mutation.RoleSeller,
		Permissions: []string{"leads.call", "leads.confirm", "leads.edit"}}}
}

// handshake sets the replica's identity as a handshake does, with these
// memberships.
func (f fixture) handshake(t *testing.T, members []localstore.Membership) {
	t.Helper()
	require.NoError(t, f.db.SetIdentity(t.Context(), f.user, "Salma", members))
}

// page applies a store page carrying the lead at version v.
func (f fixture) page(t *testing.T, v int64, status, name string, more bool) {
	t.Helper()
	at := timestamppb.New(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	require.NoError(t, f.db.ApplyPage(t.Context(), &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{
		ScopeId: f.store.String(), Epoch: 1, Cursor: v, HasMore: more, Changes: []*leadifyv1.Change{{Version: v,
			Id: f.lead.String(), Table: "leads", Row: &leadifyv1.Change_Lead{Lead: &leadifyv1.LeadRow{Id: f.lead.String(),
				StoreId: f.store.String(), Status: status, CustomerName: name, Address: "1 Rue Atlas", CreatedAt: at, UpdatedAt: at}}}}}}}))
}

func (f fixture) get(t *testing.T) mutation.Lead {
	t.Helper()
	l, _, ok, err := f.db.Lead(t.Context(), f.lead)
	require.NoError(t, err)
	require.True(t, ok)
	return l
}

func TestPendingMutationsRebaseOnPulledRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.db.Do(t.Context(), f.store, &mutation.EditLead{Lead: f.lead, EventID: uuid.New(),
		Edits: mutation.Edits{Address: &mutation.Change[string]{Old: "1 Rue Atlas", New: "9 Rue Neuve"}}})
	require.NoError(t, err)

	// Another user renamed the customer: both edits show, the version is the server's.
	f.page(t, 2, "new", "Hassan Alami", false)
	l := f.get(t)
	require.Equal(t, "Hassan Alami", l.CustomerName)
	require.Equal(t, "9 Rue Neuve", l.Address, "the pending edit is re-applied")
	require.Equal(t, int64(2), l.Version)

	// The server confirmed the lead meanwhile, and a later page undoes the
	// edit onto the re-captured image, not the first one.
	f.page(t, 3, "confirmed", "Hassan Alami", false)
	l = f.get(t)
	require.Equal(t, lead.StatusConfirmed, l.Status)
	require.Equal(t, "9 Rue Neuve", l.Address)
	st, err := f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Pending)

	// The edit is applied at version 4: once the cursor passes it, it is dropped.
	out, err := f.db.Outbox(t.Context(), 0, true, 10)
	require.NoError(t, err)
	require.NoError(t, f.db.RecordResults(t.Context(), []*leadifyv1.MutationResult{{MutationId: out[0].MutationID,
		Applied: true, ScopeId: f.store.String(), Version: 4}}))
	f.page(t, 3, "confirmed", "Hassan Alami", false)
	st, err = f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Pending, "not before the cursor reaches its version")
	f.page(t, 4, "confirmed", "Hassan Alami", false)
	st, err = f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Zero(t, st.Pending)
	require.Equal(t, "1 Rue Atlas", f.get(t).Address, "the server's row wins once the mutation is decided")
}

func TestLocalRejectionQueuesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.db.Do(t.Context(), f.store, &mutation.EditLead{Lead: f.lead, EventID: uuid.New(),
		Edits: mutation.Edits{Address: &mutation.Change[string]{Old: "wrong", New: "x"}}})
	var rej *mutation.Rejection
	require.ErrorAs(t, err, &rej)
	require.Equal(t, mutation.CodeStale, rej.Code)
	_, err = f.db.Do(t.Context(), uuid.New(), &mutation.AddNote{Lead: f.lead, EventID: uuid.New(), Note: "x"})
	require.ErrorIs(t, err, localstore.ErrNoMembership)
	st, err := f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Zero(t, st.Pending)
}

func TestResyncDropsRowsKeepsOutbox(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.db.Do(t.Context(), f.store, &mutation.AddNote{Lead: f.lead, EventID: uuid.New(), Note: "pending"})
	require.NoError(t, err)
	require.NoError(t, f.db.ApplyPage(t.Context(), &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{
		ScopeId: f.store.String(), Epoch: 2, ResyncRequired: true}}}))
	_, _, ok, err := f.db.Lead(t.Context(), f.lead)
	require.NoError(t, err)
	require.False(t, ok, "the scope's rows are dropped")
	st, err := f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Pending, "the outbox is kept")
	cs, err := f.db.Cursors(t.Context())
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, int64(2), cs[0].Epoch)
}

// FuzzApplyPage feeds arbitrary pages (outside input: the server's answer)
// to a replica with pending work: ApplyPage either applies a page or fails
// without changing anything, and never panics.
func FuzzApplyPage(f *testing.F) {
	store, leadID := uuid.New(), uuid.New()
	seed, _ := proto.Marshal(&leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{ScopeId: store.String(), Epoch: 1,
		Cursor: 1, Changes: []*leadifyv1.Change{{Version: 1, Id: leadID.String(), Table: "leads",
			Row: &leadifyv1.Change_Lead{Lead: &leadifyv1.LeadRow{Id: leadID.String(), StoreId: store.String(), Status: "new"}}}}}}})
	f.Add(seed)
	f.Add([]byte{})
	db, err := localstore.Open(f.Context(), f.TempDir()+"/fuzz.db")
	require.NoError(f, err)
	f.Cleanup(func() { _ = db.Close() })
	require.NoError(f, db.SetIdentity(f.Context(), uuid.New(), "Salma", []localstore.Membership{{StoreID: store,
		Role: mutation.RoleSeller, Permissions: []string{"leads.call"}}}))
	var first leadifyv1.PullResponse
	require.NoError(f, proto.Unmarshal(seed, &first))
	require.NoError(f, db.ApplyPage(f.Context(), &first))
	_, err = db.Do(f.Context(), store, &mutation.AddNote{Lead: leadID, EventID: uuid.New(), Note: "pending"})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		var page leadifyv1.PullResponse
		if proto.Unmarshal(data, &page) != nil {
			return
		}
		_ = db.ApplyPage(t.Context(), &page)
		st, err := db.SyncState(t.Context())
		require.NoError(t, err)
		require.LessOrEqual(t, st.Pending, 1)
	})
}

// A page that does not carry a lead still settles the lead's decided
// mutations (undone onto the server's row) and leaves its pending ones alone.
func TestRebaseTouchesOnlyAffectedLeads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := fixture{db: f.db, store: f.store, lead: uuid.New()}
	other.page(t, 2, "new", "Khadija", false)
	edit := func(x fixture, to string) {
		_, err := f.db.Do(t.Context(), f.store, &mutation.EditLead{Lead: x.lead, EventID: uuid.New(),
			Edits: mutation.Edits{Address: &mutation.Change[string]{Old: "1 Rue Atlas", New: to}}})
		require.NoError(t, err)
	}
	edit(f, "decided")
	edit(other, "still pending")
	out, err := f.db.Outbox(t.Context(), 0, true, 10)
	require.NoError(t, err)
	require.NoError(t, f.db.RecordResults(t.Context(), []*leadifyv1.MutationResult{{MutationId: out[0].MutationID,
		Applied: true, ScopeId: f.store.String(), Version: 3}}))

	third := fixture{db: f.db, store: f.store, lead: uuid.New()}
	third.page(t, 3, "new", "Youssef", false)
	st, err := f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Pending)
	require.Equal(t, "1 Rue Atlas", f.get(t).Address, "decided: back to the server's row")
	require.Equal(t, "still pending", other.get(t).Address)

	// The pending edit's before-image still holds: a page on its lead rebases it.
	other.page(t, 4, "confirmed", "Khadija", false)
	l := other.get(t)
	require.Equal(t, "still pending", l.Address)
	require.Equal(t, lead.StatusConfirmed, l.Status)
}

// Parcels and their timelines replicate with the store; a lead leaving the
// view takes its parcels with it.
func TestParcelsFollowTheirLead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	parcel, report := uuid.NewString(), uuid.NewString()
	apply := func(v int64, changes ...*leadifyv1.Change) {
		require.NoError(t, f.db.ApplyPage(t.Context(), &leadifyv1.PullResponse{Scopes: []*leadifyv1.ScopeChanges{{
			ScopeId: f.store.String(), Epoch: 1, Cursor: v, Changes: changes}}}))
	}
	apply(2,
		&leadifyv1.Change{Version: 2, Id: parcel, Table: "parcels", Row: &leadifyv1.Change_Parcel{Parcel: &leadifyv1.ParcelRow{
			Id: parcel, StoreId: f.store.String(), LeadId: f.lead.String(), Carrier: "coliix", Tracking: "CLX1", Status: "sent",
			StatusKnown: true, Creation: "created", Cod: 25800}}},
		&leadifyv1.Change{Version: 2, Id: report, Table: "parcel_events", Row: &leadifyv1.Change_ParcelEvent{ParcelEvent: &leadifyv1.ParcelEventRow{
			Id: report, StoreId: f.store.String(), ParcelId: parcel, Source: "webhook", RawStatus: "Expédié", Status: "sent",
			Known: true, Applied: true}}})
	count := func(table string) int {
		var n int
		require.NoError(t, localstore.SQL(f.db).QueryRow(`SELECT count(*) FROM `+table).Scan(&n))
		return n
	}
	require.Equal(t, 1, count("parcels"))
	require.Equal(t, 1, count("parcel_events"))
	var tracking string
	require.NoError(t, localstore.SQL(f.db).QueryRow(`SELECT tracking FROM parcels WHERE lead_id = ?`, f.lead.String()).Scan(&tracking))
	require.Equal(t, "CLX1", tracking)

	apply(3, &leadifyv1.Change{Version: 3, Id: f.lead.String(), Table: "leads", Deleted: true})
	require.Zero(t, count("parcels"))
	require.Zero(t, count("parcel_events"))
}

// A push that finds the outbox sent lets the next poke skip reading it, but a
// mutation committed after that push began is never skipped.
func TestMaybeUnsentFollowsCommittedMutations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	gen, maybe := f.db.MaybeUnsent()
	require.True(t, maybe, "unknown after opening")
	f.db.MarkSent(gen)
	_, maybe = f.db.MaybeUnsent()
	require.False(t, maybe)

	gen, _ = f.db.MaybeUnsent()
	_, err := f.db.Do(t.Context(), f.store, &mutation.AddNote{Lead: f.lead, EventID: uuid.New(), Note: "later"})
	require.NoError(t, err)
	f.db.MarkSent(gen) // a push that looked before the commit
	_, maybe = f.db.MaybeUnsent()
	require.True(t, maybe, "the mutation committed after the push looked is still to send")
	out, err := f.db.Outbox(t.Context(), 0, true, 10)
	require.NoError(t, err)
	require.Len(t, out, 1)
}

// Pulled pages commit through the second handle; a page and its cursor land
// together, and an unchanged cursor is left as it is.
func TestPulledPagesAndCursorsCommitTogether(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.page(t, 2, "new", "Hassan Alami", false)
	f.page(t, 2, "new", "Hassan Alami", false)
	cs, err := f.db.Cursors(t.Context())
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, int64(2), cs[0].Version)
	require.Equal(t, "Hassan Alami", f.get(t).CustomerName)
}

// A mutation whose applied result names a store the replica stopped following
// (the member was removed before the answer arrived: a lost reply, resent
// later) is decided: the next pull drops it instead of keeping it pending for
// ever. Found by the sync simulation.
func TestAppliedInAScopeNoLongerFollowedIsDecided(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.db.Do(t.Context(), f.store, &mutation.AddNote{Lead: f.lead, EventID: uuid.New(), Note: "sent, answer lost"})
	require.NoError(t, err)
	require.NoError(t, f.db.ApplyPage(t.Context(), &leadifyv1.PullResponse{RemovedScopes: []string{f.store.String()}}))
	st, err := f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Pending, "without an answer it stays queued")

	out, err := f.db.Outbox(t.Context(), 0, true, 10)
	require.NoError(t, err)
	require.NoError(t, f.db.RecordResults(t.Context(), []*leadifyv1.MutationResult{{MutationId: out[0].MutationID,
		Applied: true, ScopeId: f.store.String(), Version: 7}}))
	st, err = f.db.SyncState(t.Context())
	require.NoError(t, err)
	require.Zero(t, st.Pending, "applied, in a scope this replica no longer follows")
}

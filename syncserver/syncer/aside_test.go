package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/servertest"
	"github.com/leadify/leadify/syncserver/syncer"
)

// asideLeads are n pool leads stamped from first on.
func asideLeads(store uuid.UUID, first int64, n int, name string) []mutation.Lead {
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]mutation.Lead, n)
	for i := range out {
		out[i] = mutation.Lead{ID: uuid.Must(uuid.NewV7()), StoreID: store, Version: first + int64(i), CreatedAt: now, UpdatedAt: now,
			Status: lead.StatusNew, CustomerName: fmt.Sprintf("%s %d", name, i), PhoneRaw: "0612345678", PhoneE164: "+212612345678",
			CityID: "casablanca", CityRaw: "Casa", Address: "street", COD: 120 * money.Dirham, Source: "test",
			Items: []mutation.Item{{SKU: "ARG-100", Name: "Huile d'argan 100ml", Qty: 1, UnitPrice: 120 * money.Dirham}}}
	}
	return out
}

// asideWriter is a WriteAside in flight: it has reserved its versions and
// written its leads, and ends with what it is released with: nil commits.
type asideWriter struct {
	first   int64
	release chan func(*syncer.Writer) error
	done    chan error
}

func startAside(t *testing.T, env *servertest.Env, store uuid.UUID, n int, name string) *asideWriter {
	t.Helper()
	a := &asideWriter{release: make(chan func(*syncer.Writer) error, 1), done: make(chan error, 1)}
	t.Cleanup(func() {
		select { // a test that failed early must not leave it holding a connection
		case a.release <- func(*syncer.Writer) error { return errors.New("the test ended") }:
		default:
		}
	})
	ready := make(chan struct{})
	go func() {
		a.done <- syncer.WriteAside(context.Background(), env.DB.App, reservePool(t, env), postgres.StoreScope(store), func(w *syncer.Writer) error {
			first, err := w.Reserve(store, n)
			if err != nil {
				close(ready)
				return err
			}
			a.first = first
			err = w.InsertLeads(asideLeads(store, first, n, name))
			close(ready)
			if err != nil {
				return err
			}
			if end := <-a.release; end != nil {
				return end(w)
			}
			return nil
		})
	}()
	<-ready
	require.NotZero(t, a.first, "the aside writer reserved")
	return a
}

func names(r *replica) map[string]bool {
	out := map[string]bool{}
	for _, ch := range r.leads {
		out[ch.GetLead().CustomerName] = true
	}
	return out
}

// Rows written with versions reserved aside reach replicas in version order
// although they commit after rows above them: until the aside writer
// commits, pulls and deliveries stop below its versions (what committed above
// them waits too), and then take everything.
func TestAsideReservationsHoldReplicasBelowThem(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "aside")
	store := tn.StoreID
	env.SeedLeads(store, 2, "Before")
	r := newReplica(t, tn.Seller)
	r.pull(1000)
	follower := newReplica(t, tn.Seller)
	follower.pull(1000)
	st := subscribe(t, follower)
	env.SeedLeads(store, 20, "Between") // not pulled yet: the pull below pages
	before := r.cursors[store.String()].Version + 20

	a := startAside(t, env, store, 3, "Aside")
	require.Equal(t, before+1, a.first)
	env.SeedLeads(store, 20, "Above") // commits first, with higher versions
	top := storeVersion(t, env, store)
	require.Equal(t, a.first+3+19, top)

	// Pages of 8 rows: the last one's bound, the 8th row above its cursor,
	// is among the rows above the reservation.
	r.pull(8)
	require.Equal(t, before, r.cursors[store.String()].Version, "a pull stops below the reservation")
	got := names(r)
	require.True(t, got["Between 19"])
	require.False(t, got["Above 0"], "a row committed above a reservation waits for it")
	// The stream was poked by the commit above the reservation: it sends
	// nothing past it.
	select {
	case m := <-st.msgs:
		if m.Delivered != nil {
			require.Less(t, m.Delivered.Changes.Cursor, a.first, "a delivery stops below the reservation")
			for _, ch := range m.Delivered.Changes.Changes {
				require.Less(t, ch.Version, a.first)
			}
		}
	case <-time.After(2 * time.Second):
	}

	a.release <- nil
	require.NoError(t, <-a.done)
	r.pull(1000)
	require.Equal(t, top, r.cursors[store.String()].Version)
	got = names(r)
	for _, n := range []string{"Before 0", "Before 1", "Between 0", "Aside 0", "Aside 1", "Aside 2", "Above 0", "Above 19"} {
		require.True(t, got[n], "%s pulled", n)
	}
	delivered, poked := st.until(t, store.String(), top)
	if !poked { // else the replica pulls, as above
		ids := map[string]bool{}
		for _, d := range delivered {
			for _, ch := range d.Changes.Changes {
				ids[ch.GetLead().GetCustomerName()] = true
			}
		}
		for _, n := range []string{"Aside 0", "Aside 1", "Aside 2", "Above 0", "Above 19"} {
			require.True(t, ids[n], "%s delivered", n)
		}
	}
	require.Zero(t, reservations(t, env, store), "a committed writer's reservation is gone")
}

// A writer that aborts after reserving aside — it failed, or its connection
// died (the server was killed) — leaves a gap in the versions that holds
// nobody back, and the next reservation clears its record.
func TestAbortedAsideWritersLeaveAGap(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "aside-abort")
	store := tn.StoreID
	r := newReplica(t, tn.Seller)
	r.pull(1000)

	failed := startAside(t, env, store, 2, "Failed")
	boom := errors.New("boom")
	failed.release <- func(*syncer.Writer) error { return boom }
	require.ErrorIs(t, <-failed.done, boom)

	// The server dies: its connection drops, and Postgres aborts the
	// transaction.
	killed := startAside(t, env, store, 2, "Killed")
	killed.release <- func(w *syncer.Writer) error {
		if err := w.Tx.Conn().PgConn().Conn().Close(); err != nil {
			return err
		}
		_, err := w.Tx.Exec(context.Background(), `SELECT 1`)
		return err
	}
	require.Error(t, <-killed.done, "the killed writer's transaction is gone")
	// The killed writer's reservation reaped the failed one's; its own
	// record stays, holding nobody back, until the next reservation.
	require.Eventually(t, func() bool {
		return reservations(t, env, store) == 1 && visible(t, env, store) == storeVersion(t, env, store)
	},
		10*time.Second, 20*time.Millisecond)

	env.SeedLeads(store, 1, "After")
	top := storeVersion(t, env, store)
	r.pull(1000)
	require.Equal(t, top, r.cursors[store.String()].Version, "the aborted reservations hold nobody back")
	got := names(r)
	require.True(t, got["After 0"])
	require.False(t, got["Failed 0"] || got["Killed 0"])

	ok := startAside(t, env, store, 1, "Next")
	require.Equal(t, 1, reservations(t, env, store), "the next reservation reaped the aborted ones")
	ok.release <- nil
	require.NoError(t, <-ok.done)
	require.Zero(t, reservations(t, env, store))
}

// A writer reserving aside neither locks its scope nor reserves twice.
func TestAsideWritersDoNotLock(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "aside-lock")
	store := tn.StoreID
	err := syncer.WriteAside(context.Background(), env.DB.App, reservePool(t, env), postgres.StoreScope(store), func(w *syncer.Writer) error {
		return w.Lock(store)
	})
	require.ErrorContains(t, err, "does not lock")
	err = syncer.WriteAside(context.Background(), env.DB.App, reservePool(t, env), postgres.StoreScope(store), func(w *syncer.Writer) error {
		if _, err := w.Reserve(store, 1); err != nil {
			return err
		}
		_, err := w.Reserve(store, 1)
		return err
	})
	require.ErrorContains(t, err, "reserves once")
	// Another store's scope: not the transaction's.
	other := env.NewTenant(env.Admin(), "aside-other").StoreID
	err = syncer.WriteAside(context.Background(), env.DB.App, reservePool(t, env), postgres.StoreScope(store), func(w *syncer.Writer) error {
		_, err := w.Reserve(other, 1)
		return err
	})
	require.ErrorIs(t, err, postgres.ErrNotFound)
	require.Zero(t, reservations(t, env, other))
	require.Equal(t, storeVersion(t, env, store), visible(t, env, store), "the refused writers' reservations hold nobody back")
}

// visible is the store's version as pulls read it.
func visible(t *testing.T, env *servertest.Env, scope uuid.UUID) int64 {
	return ownerInt(t, env, `SELECT sync_visible_seq(scope_id, seq) FROM sync_scopes WHERE scope_id = $1`, scope)
}

// ownerInt reads one integer as the database's owner.
func ownerInt(t *testing.T, env *servertest.Env, query string, args ...any) int64 {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), env.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var v int64
	require.NoError(t, conn.QueryRow(context.Background(), query, args...).Scan(&v))
	return v
}

// reservePool is a pool of the test's own for aside reservations.
func reservePool(t *testing.T, env *servertest.Env) *pgxpool.Pool {
	t.Helper()
	p := postgres.NewSidePool(env.DB.App, 2)
	t.Cleanup(p.Close)
	pool, err := p.Get(context.Background())
	require.NoError(t, err)
	return pool
}

func reservations(t *testing.T, env *servertest.Env, scope uuid.UUID) int {
	return int(ownerInt(t, env, `SELECT count(*) FROM sync_reservations WHERE scope_id = $1`, scope))
}

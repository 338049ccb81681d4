package shopsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/internal/groupcommit"
	"github.com/leadify/leadify/syncserver/postgres"
)

// DefaultInboxWindow is how long the batcher waits for more webhooks before
// committing a batch.
const DefaultInboxWindow = 2 * time.Millisecond

// MaxInboxBatch bounds the webhooks committed together.
const MaxInboxBatch = 512

// inboxFlushers is how many batches may commit at once.
const inboxFlushers = 4

// Delivery is one verified webhook.
type Delivery struct {
	Store      uuid.UUID
	Connection uuid.UUID
	Platform   string
	DeliveryID string // the platform's event or delivery id: the dedupe key
	Topic      string
	Body       []byte
}

// Outcome is what the inbox did with a delivery.
type Outcome int

// The outcomes of Submit.
const (
	Stored    Outcome = iota + 1 // new, durably stored, processing enqueued
	Duplicate                    // this delivery id was stored before
)

// StoredDelivery is a delivery committed by a batch.
type StoredDelivery struct {
	Store uuid.UUID
	ID    uuid.UUID
}

// Enqueuer enqueues processing of stored deliveries inside the batch's
// transaction.
type Enqueuer func(ctx context.Context, tx *postgres.Tx, stored []StoredDelivery) error

// Committed hears of deliveries once their batch has committed.
type Committed func(stored []StoredDelivery)

// Inbox stores webhooks durably with group commit: deliveries arriving
// together share one transaction (one fsync). It commits through a
// groupcommit.Group (as the carrier webhook inbox does), with flush:
// Submit stores a delivery and returns its outcome once committed. When
// Submit's ctx ends first the delivery may or may not be stored: the shop
// retries and the delivery id makes the retry a Duplicate. StoreNow stores
// one in a transaction of its own (no group commit): the benchmarks'
// baseline.
//
// Close commits every delivery already handed to the batchers — those of
// the batches being committed, and those still queued — and answers its
// Submit, so nothing acknowledged is lost, then closes the inbox's
// connections; Submit and StoreNow fail with ErrInboxClosed from the
// moment Close is called. Whoever makes an inbox closes it once nothing
// submits to it any more: a server, after its HTTP server drained (Close
// waits for the commits; closing it again does nothing).
type Inbox struct {
	g       *groupcommit.Group[Delivery, Outcome] // commits with flush
	pool    *pgxpool.Pool
	enqueue Enqueuer
	// OnCommit, when set, hears of every committed batch's new deliveries
	// (outside the transaction).
	OnCommit Committed
	conns    *postgres.SidePool // the inbox's own connections
}

// ErrInboxClosed is Submit's (and StoreNow's) error once the inbox is
// closed: the delivery was not stored, and the shop retries it.
var ErrInboxClosed = errors.New("shop webhook inbox closed")

// NewInbox returns an inbox; its batchers start with the first Submit.
func NewInbox(pool *pgxpool.Pool, enqueue Enqueuer, window time.Duration) *Inbox {
	in := &Inbox{pool: pool, conns: postgres.NewSidePool(pool, inboxFlushers), enqueue: enqueue}
	in.g = groupcommit.New(groupcommit.Config[Delivery, Outcome]{Window: window, MaxBatch: MaxInboxBatch,
		Batchers: inboxFlushers, Commit: in.flush, Closed: ErrInboxClosed, OnClose: in.conns.Close, Batcher: in.loop})
	return in
}

// loop is one batcher (Run starts them; Submit starts Run once by
// itself): a method of the inbox's, so that a goroutine dump names it.
func (in *Inbox) loop(ctx context.Context) { in.g.Loop(ctx) }

// Submit stores d with group commit and returns its outcome once its batch
// committed (see Inbox).
func (in *Inbox) Submit(ctx context.Context, d Delivery) (Outcome, error) { return in.g.Submit(ctx, d) }

// StoreNow stores d in a transaction of its own, without group commit (see
// Inbox).
func (in *Inbox) StoreNow(ctx context.Context, d Delivery) (Outcome, error) {
	return in.g.StoreNow(ctx, d)
}

// Run runs the inbox's batchers until ctx ends or the inbox is closed;
// Submit starts them once by itself.
func (in *Inbox) Run(ctx context.Context) { in.g.Run(ctx) }

// Close commits every delivery already handed to the batchers, stops them
// and closes the inbox's connections (see Inbox). Closing it again does
// nothing.
func (in *Inbox) Close() { in.g.Close() }

// InsertColumns are shop_webhooks' columns a delivery fills (the
// benchmark's COPY baseline writes the same).
var InsertColumns = []string{"store_id", "id", "connection_id", "platform", "delivery_id", "topic", "body"}

const insertInbox = `INSERT INTO shop_webhooks (store_id, id, connection_id, platform, delivery_id, topic, body)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::bytea[])
ON CONFLICT (store_id, connection_id, delivery_id) DO NOTHING RETURNING id`

// flush commits one batch: in one round trip on the inbox's own
// connections, or, with an Enqueuer, in a transaction that enqueues the
// processing of the new deliveries too. OnCommit hears of them once it
// committed.
func (in *Inbox) flush(ctx context.Context, batch []Delivery) ([]Outcome, func(), error) {
	n := len(batch)
	var (
		stores    = make([]uuid.UUID, n)
		ids       = make([]uuid.UUID, n)
		conns     = make([]uuid.UUID, n)
		platforms = make([]string, n)
		delivery  = make([]string, n)
		topics    = make([]string, n)
		bodies    = make([][]byte, n)
	)
	for i, d := range batch {
		stores[i], ids[i], conns[i], platforms[i] = d.Store, uuid.Must(uuid.NewV7()), d.Connection, d.Platform
		delivery[i], topics[i], bodies[i] = d.DeliveryID, d.Topic, d.Body
		if bodies[i] == nil {
			bodies[i] = []byte{}
		}
	}
	inserted := map[uuid.UUID]bool{}
	var stored []StoredDelivery
	byID := make(map[uuid.UUID]uuid.UUID, n)
	for i := range ids {
		byID[ids[i]] = stores[i]
	}
	scan := func(rows pgx.Rows) error {
		defer rows.Close()
		clear(inserted)
		stored = stored[:0]
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				return err
			}
			inserted[id] = true
			stored = append(stored, StoredDelivery{Store: byID[id], ID: id})
		}
		return rows.Err()
	}
	var err error
	if in.enqueue == nil {
		// One round trip on the inbox's own connections: its commits do not
		// queue for a connection behind the jobs making leads from the
		// webhooks it stored.
		var pool *pgxpool.Pool
		if pool, err = in.conns.Get(ctx); err == nil {
			err = postgres.QueryInOneTrip(ctx, pool, postgres.Scope{AllStores: true}, insertInbox,
				[]any{stores, ids, conns, platforms, delivery, topics, bodies}, scan)
		}
	} else {
		err = postgres.InTx(ctx, in.pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
			rows, err := tx.Query(ctx, insertInbox, stores, ids, conns, platforms, delivery, topics, bodies)
			if err != nil {
				return err
			}
			if err := scan(rows); err != nil {
				return err
			}
			if len(stored) == 0 {
				return nil
			}
			return in.enqueue(ctx, tx, stored)
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store webhook: %w", err)
	}
	outcomes := make([]Outcome, n)
	for i := range batch {
		outcomes[i] = Duplicate
		if inserted[ids[i]] {
			outcomes[i] = Stored
		}
	}
	var committed func()
	if onCommit := in.OnCommit; len(stored) > 0 && onCommit != nil {
		committed = func() { onCommit(stored) }
	}
	return outcomes, committed, nil
}

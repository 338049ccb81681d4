package shopsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
// together share one transaction (one fsync). Submit returns once the
// delivery is committed. (The same design as the carrier webhook inbox.)
//
// Whoever makes an inbox closes it (Close) once nothing submits to it any
// more: a server, after its HTTP server drained.
type Inbox struct {
	pool    *pgxpool.Pool
	enqueue Enqueuer
	// OnCommit, when set, hears of every committed batch's new deliveries
	// (outside the transaction).
	OnCommit Committed
	window   time.Duration
	reqs     chan *pending
	start    sync.Once
	conns    *postgres.SidePool // the inbox's own connections

	mu      sync.Mutex
	closed  bool
	stop    chan struct{}  // closed by Close
	handing sync.WaitGroup // Submits handing a delivery to the batchers
	running sync.WaitGroup // Run calls
}

// ErrInboxClosed is Submit's (and StoreNow's) error once the inbox is
// closed: the delivery was not stored, and the shop retries it.
var ErrInboxClosed = errors.New("shop webhook inbox closed")

type pending struct {
	d    Delivery
	done chan result
}

type result struct {
	out Outcome
	err error
}

// NewInbox returns an inbox; its batchers start with the first Submit.
func NewInbox(pool *pgxpool.Pool, enqueue Enqueuer, window time.Duration) *Inbox {
	return &Inbox{pool: pool, conns: postgres.NewSidePool(pool, inboxFlushers), enqueue: enqueue, window: window,
		reqs: make(chan *pending, 4*MaxInboxBatch), stop: make(chan struct{})}
}

// Close stops the batchers and closes the inbox's connections. Every
// delivery already handed to the batchers is committed first — those of
// the batches being committed, and those still queued — and its Submit
// answered, so nothing acknowledged is lost; Submit and StoreNow fail with
// ErrInboxClosed from the moment Close is called. Call it once no request
// is served (the HTTP server drained): it waits for the commits. Closing
// it again does nothing (and returns at once).
func (in *Inbox) Close() {
	in.start.Do(func() {}) // no batcher starts after Close
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.closed = true
	close(in.stop)
	in.mu.Unlock()
	// No delivery is handed over from now on; the batchers finish the
	// batches they hold and stop.
	in.handing.Wait()
	in.running.Wait()
	// What is still queued (all batchers were busy, or none ran) is
	// committed here, on the inbox's connections, before they close.
	for {
		var batch []*pending
	drain:
		for len(batch) < MaxInboxBatch {
			select {
			case p := <-in.reqs:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			break
		}
		in.flush(context.Background(), batch)
	}
	in.conns.Close()
}

// Submit stores d and returns its outcome once committed. When ctx ends
// first the delivery may or may not be stored: the shop retries and the
// delivery id makes the retry a Duplicate. It fails with ErrInboxClosed
// once the inbox is closed; a delivery handed over before is committed
// by Close.
func (in *Inbox) Submit(ctx context.Context, d Delivery) (Outcome, error) {
	in.start.Do(func() { go in.Run(context.Background()) })
	p := &pending{d: d, done: make(chan result, 1)}
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return 0, ErrInboxClosed
	}
	in.handing.Add(1)
	in.mu.Unlock()
	select {
	case in.reqs <- p:
		in.handing.Done()
	case <-ctx.Done():
		in.handing.Done()
		return 0, ctx.Err()
	case <-in.stop: // the queue is full and the inbox closing
		in.handing.Done()
		return 0, ErrInboxClosed
	}
	// Handed over: a batcher, or Close, commits it and answers.
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// StoreNow stores d in a transaction of its own (no group commit): the
// benchmarks' baseline.
func (in *Inbox) StoreNow(ctx context.Context, d Delivery) (Outcome, error) {
	in.mu.Lock()
	closed := in.closed
	in.mu.Unlock()
	if closed {
		return 0, ErrInboxClosed
	}
	p := &pending{d: d, done: make(chan result, 1)}
	in.flush(ctx, []*pending{p})
	r := <-p.done
	return r.out, r.err
}

// Run commits batches until ctx ends or the inbox is closed (the batches
// being committed are finished first). Submit calls it once by itself.
func (in *Inbox) Run(ctx context.Context) {
	in.start.Do(func() {})
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.running.Add(1)
	in.mu.Unlock()
	defer in.running.Done()
	var wg sync.WaitGroup
	for range inboxFlushers {
		wg.Go(func() { in.loop(ctx) })
	}
	wg.Wait()
}

func (in *Inbox) loop(ctx context.Context) {
	for {
		select {
		case <-in.stop:
			return // Close commits what is still queued
		default:
		}
		var first *pending
		select {
		case <-ctx.Done():
			return
		case <-in.stop:
			return
		case first = <-in.reqs:
		}
		batch := []*pending{first}
		timer := time.NewTimer(in.window)
	collect:
		for len(batch) < MaxInboxBatch {
			select {
			case p := <-in.reqs:
				batch = append(batch, p)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		in.flush(context.WithoutCancel(ctx), batch)
	}
}

// InsertColumns are shop_webhooks' columns a delivery fills (the
// benchmark's COPY baseline writes the same).
var InsertColumns = []string{"store_id", "id", "connection_id", "platform", "delivery_id", "topic", "body"}

const insertInbox = `INSERT INTO shop_webhooks (store_id, id, connection_id, platform, delivery_id, topic, body)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::bytea[])
ON CONFLICT (store_id, connection_id, delivery_id) DO NOTHING RETURNING id`

func (in *Inbox) flush(ctx context.Context, batch []*pending) {
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
	for i, p := range batch {
		d := p.d
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
	if err == nil && len(stored) > 0 && in.OnCommit != nil {
		in.OnCommit(stored)
	}
	for i, p := range batch {
		switch {
		case err != nil:
			p.done <- result{err: fmt.Errorf("store webhook: %w", err)}
		case inserted[ids[i]]:
			p.done <- result{out: Stored}
		default:
			p.done <- result{out: Duplicate}
		}
	}
}

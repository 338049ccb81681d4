package parcels

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/postgres"
)

// DefaultInboxWindow is how long the inbox batcher waits for more webhooks
// before committing a batch.
const DefaultInboxWindow = 2 * time.Millisecond

// MaxInboxBatch bounds the webhooks committed together.
const MaxInboxBatch = 512

// inboxFlushers is how many batches may commit at once.
const inboxFlushers = 4

// Delivery is one webhook request as received.
type Delivery struct {
	AccountID   uuid.UUID
	TokenHash   []byte // SHA-256 of the token from the URL
	Carrier     string
	Method      string
	ContentType string
	Query       string
	Body        []byte
}

// Digest identifies a delivery: a byte-identical repeat is the same one.
func (d Delivery) Digest() []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", d.Method, d.Query, d.ContentType)
	h.Write(d.Body)
	return h.Sum(nil)
}

// Outcome is what the inbox did with a delivery.
type Outcome int

// The outcomes of Submit.
const (
	Stored       Outcome = iota + 1 // new, durably stored, processing enqueued
	Duplicate                       // already stored
	Unauthorized                    // no account with this id, carrier and token
)

// Stored is a delivery committed by a batch, for the processing enqueuer.
type StoredDelivery struct {
	Store uuid.UUID
	ID    uuid.UUID
}

// Enqueuer enqueues processing of stored deliveries inside the batch's
// transaction.
type Enqueuer func(ctx context.Context, tx *postgres.Tx, stored []StoredDelivery) error

// Inbox stores webhooks durably with group commit: deliveries arriving
// together share one transaction (one fsync), so throughput is not one
// commit per webhook. Submit returns once the delivery is committed.
type Inbox struct {
	conns   *postgres.SidePool // the inbox's own connections: it acknowledges only what it stored
	enqueue Enqueuer
	window  time.Duration
	reqs    chan *pending
	start   sync.Once

	mu      sync.Mutex
	closed  bool
	stop    chan struct{}  // closed by Close
	running sync.WaitGroup // Run calls
}

// ErrInboxClosed is Submit's error once the inbox is closed.
var ErrInboxClosed = errors.New("webhook inbox closed")

type pending struct {
	ctx  context.Context
	d    Delivery
	done chan result
}

type result struct {
	out Outcome
	err error
}

// NewInbox returns an inbox. Its batchers start with the first Submit and
// live as long as the process (they hold no resources while idle); call Run
// instead to bound them by a context.
func NewInbox(pool *pgxpool.Pool, enqueue Enqueuer, window time.Duration) *Inbox {
	return &Inbox{conns: postgres.NewSidePool(pool, inboxFlushers), enqueue: enqueue, window: window, reqs: make(chan *pending, 4*MaxInboxBatch),
		stop: make(chan struct{})}
}

// Close stops the batchers once the batches they are committing are done,
// and closes the inbox's connections: Submit fails with ErrInboxClosed from
// then on. Call it once no request is served (the HTTP server drained).
func (in *Inbox) Close() {
	in.start.Do(func() {}) // no batcher starts after Close
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		close(in.stop)
	}
	in.mu.Unlock()
	in.running.Wait()
	in.conns.Close()
}

// Submit stores d and returns its outcome once committed. It fails when ctx
// ends first (the delivery may or may not be stored: the carrier retries and
// the digest makes the retry a Duplicate) or the batch's transaction fails.
func (in *Inbox) Submit(ctx context.Context, d Delivery) (Outcome, error) {
	in.start.Do(func() { go in.Run(context.Background()) })
	p := &pending{ctx: ctx, d: d, done: make(chan result, 1)}
	select {
	case <-in.stop:
		return 0, ErrInboxClosed
	default:
	}
	select {
	case in.reqs <- p:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-in.stop:
		return 0, ErrInboxClosed
	}
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-in.stop:
		// Its batch may be committing: the batchers stop after it.
		in.running.Wait()
		select {
		case r := <-p.done:
			return r.out, r.err
		default:
			return 0, ErrInboxClosed
		}
	}
}

// StoreNow stores d in a transaction of its own, without group commit: the
// baseline the benchmarks compare group commit with.
func (in *Inbox) StoreNow(ctx context.Context, d Delivery) (Outcome, error) {
	p := &pending{ctx: ctx, d: d, done: make(chan result, 1)}
	in.flush(ctx, []*pending{p})
	r := <-p.done
	return r.out, r.err
}

// Run commits batches until ctx ends or the inbox is closed. Submit calls
// it once by itself.
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
	done := make(chan struct{})
	for range inboxFlushers {
		go func() {
			defer func() { done <- struct{}{} }()
			in.loop(ctx)
		}()
	}
	for range inboxFlushers {
		<-done
	}
}

func (in *Inbox) loop(ctx context.Context) {
	for {
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

const insertInbox = `WITH u AS (
  SELECT * FROM unnest($1::int[], $2::uuid[], $3::bytea[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::uuid[])
    AS u(idx, account_id, token_hash, carrier, digest, method, content_type, query, body, id)
), auth AS (
  SELECT u.*, a.store_id FROM u JOIN carrier_accounts a
    ON a.id = u.account_id AND a.webhook_token_hash = u.token_hash AND a.carrier = u.carrier AND a.deleted_at IS NULL
), ins AS (
  INSERT INTO webhook_inbox (store_id, id, account_id, carrier, digest, method, content_type, query, body)
  SELECT store_id, id, account_id, carrier, digest, method, content_type, query, body FROM auth
  ON CONFLICT DO NOTHING RETURNING id
)
SELECT auth.idx, auth.store_id, auth.id, ins.id IS NOT NULL FROM auth LEFT JOIN ins ON ins.id = auth.id`

func (in *Inbox) flush(ctx context.Context, batch []*pending) {
	n := len(batch)
	var (
		idx      = make([]int32, n)
		accounts = make([]uuid.UUID, n)
		hashes   = make([][]byte, n)
		carriers = make([]string, n)
		digests  = make([][]byte, n)
		methods  = make([]string, n)
		cts      = make([]string, n)
		queries  = make([]string, n)
		bodies   = make([][]byte, n)
		ids      = make([]uuid.UUID, n)
	)
	for i, p := range batch {
		d := p.d
		idx[i], accounts[i], hashes[i], carriers[i], digests[i] = int32(i), d.AccountID, d.TokenHash, d.Carrier, d.Digest()
		methods[i], cts[i], queries[i], bodies[i], ids[i] = d.Method, d.ContentType, d.Query, d.Body, uuid.Must(uuid.NewV7())
		if bodies[i] == nil {
			bodies[i] = []byte{}
		}
	}
	outcomes := make([]Outcome, n)
	pool, err := in.conns.Get(ctx)
	if err != nil {
		for _, p := range batch {
			p.done <- result{err: fmt.Errorf("store webhook: %w", err)}
		}
		return
	}
	err = postgres.InTx(ctx, pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		for i := range outcomes {
			outcomes[i] = Unauthorized
		}
		rows, err := tx.Query(ctx, insertInbox, idx, accounts, hashes, carriers, digests, methods, cts, queries, bodies, ids)
		if err != nil {
			return err
		}
		var stored []StoredDelivery
		for rows.Next() {
			var (
				i         int32
				store, id uuid.UUID
				inserted  bool
			)
			if err := rows.Scan(&i, &store, &id, &inserted); err != nil {
				return err
			}
			outcomes[i] = Duplicate
			if inserted {
				outcomes[i] = Stored
				stored = append(stored, StoredDelivery{Store: store, ID: id})
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(stored) == 0 || in.enqueue == nil {
			return nil
		}
		return in.enqueue(ctx, tx, stored)
	})
	for i, p := range batch {
		if err != nil {
			p.done <- result{err: fmt.Errorf("store webhook: %w", err)}
			continue
		}
		p.done <- result{out: outcomes[i]}
	}
}
